"""smallmath: 24 short arithmetic and word problems with integer answers, written for assay.

Small enough for the embedded 135M model on a CPU to be evaluated in minutes, and easy enough that
its score is above zero, so the whole evaluation path (generation, extraction, grading, metrics) is
exercised with real, varying outcomes. Fields: id, problem, expected_answer.
"""
