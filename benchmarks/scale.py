"""Training at scale: peak memory and throughput of the recipe's input pipeline.

    python benchmarks/scale.py [--series 200000] [--lengths 50 500]
        [--features 3] [--epochs 1] [--out results/scale.json]

Generates `--series` random series (lengths uniform in `--lengths`, float32,
`--features` features, 10 classes), plans the default recipe for them with
`--epochs` epochs (`keras_seqrnn.plan_training`) and trains it
(`keras_seqrnn.fit_classifier`). Prints and writes the process's peak
resident memory after generating the data and after training, the memory
the data itself takes, the training seconds and the sequences per second.
"""

import argparse
import json
import os
import pathlib
import resource
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

import keras_seqrnn  # noqa: E402

RESULTS = pathlib.Path(__file__).parent / "results"


def peak_mib() -> float:
    """The process's peak resident memory so far (Linux: KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", type=int, default=200_000)
    parser.add_argument("--lengths", type=int, nargs=2, default=[50, 500])
    parser.add_argument("--features", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--out", type=pathlib.Path, default=RESULTS / "scale.json")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    lengths = rng.integers(args.lengths[0], args.lengths[1] + 1, args.series)
    labels = rng.integers(0, 10, args.series)
    sequences = [
        rng.standard_normal((n, args.features), dtype=np.float32) for n in lengths
    ]
    data_mib = sum(s.nbytes for s in sequences) / 2**20
    after_data = peak_mib()
    plan, _ = keras_seqrnn.plan_training(sequences, labels, epochs=args.epochs)
    started = time.perf_counter()
    result = keras_seqrnn.fit_classifier(sequences, labels, plan)
    seconds = time.perf_counter() - started
    row = {
        "series": args.series,
        "lengths": args.lengths,
        "features": args.features,
        "plan": plan.to_dict(),
        "data_mib": round(data_mib),
        "peak_mib_after_data": round(after_data),
        "peak_mib_after_training": round(peak_mib()),
        "training_seconds": round(seconds, 1),
        "epoch_seconds": round(result.seconds / plan.epochs, 1),
        "sequences_per_second": round(args.series * plan.epochs / result.seconds, 1),
        "version": keras_seqrnn.__version__,
    }
    for key, value in row.items():
        if key != "plan":
            print(f"{key:>24}  {value}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(row, indent=2) + "\n")


if __name__ == "__main__":
    main()
