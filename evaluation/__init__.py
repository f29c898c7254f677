"""Evaluation: answer and code extraction, graders, metrics, failure taxonomy, summaries.

final_answer.py      the final-answer region of a generation (harmony final channel, </think>)
extract_math.py      last \\boxed{} / Final Answer line
extract_code.py      the code block a model gave as its answer
grade_math.py        math equivalence (normalisation, exact numbers, math-verify behind a deadline)
code_taxonomy.py     why a code answer failed (pure functions of the sandbox's errors)
grade_code.py        runs answer + hidden tests in a fresh sandbox session per sample
metrics.py           pass@1[avg-of-k], majority@k, pass@k, no_answer, per category
evaluate_results.py  stage: grade generation files in place (++grader=math|code)
compute_metrics.py   stage: one benchmark's seed files -> metrics.json
summarize.py         summarize_results(): tables per benchmark, runs side by side
"""
