"""Three chained jobs: A, then B after A succeeds, then C after B succeeds.

    python recipes/chain_three_jobs.py --cluster=local --output_dir=/tmp/chain
    python recipes/chain_three_jobs.py --cluster=my_slurm_cluster --output_dir=/shared/chain

Each job appends its name and the time to <output_dir>/order.txt; run it with --fail_b to see C held
back (afterok) when B fails.
"""

import argparse

from assay.pipeline import run_cmd


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cluster", default="local")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--fail_b", action="store_true", help="make B fail, so C never starts")
    parser.add_argument("--dry_run", action="store_true")
    args = parser.parse_args()

    order = f"{args.output_dir}/order.txt"
    common = dict(cluster=args.cluster, output_dir=args.output_dir, dry_run=args.dry_run, wait=False)
    run_cmd(f"echo A $(date +%s.%N) >> {order}", expname="chain-A", **common)
    run_cmd(
        f"echo B $(date +%s.%N) >> {order}" + ("; exit 1" if args.fail_b else ""),
        expname="chain-B",
        run_after="chain-A",
        **common,
    )
    run_cmd(f"echo C $(date +%s.%N) >> {order}", expname="chain-C", run_after="chain-B", **common)


if __name__ == "__main__":
    main()
