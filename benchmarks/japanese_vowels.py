"""The default recipe on JapaneseVowels, over several seeds.

    python benchmarks/japanese_vowels.py [--seeds 0 1 2] [--set KEY=VALUE ...]

Runs what `seqrnn train --data japanese_vowels --seed S` runs (the plan
`keras_seqrnn.plan_training` derives, `keras_seqrnn.fit_classifier`) for
each seed, prints the test accuracy and training time of each and their
median, and writes benchmarks/results/japanese_vowels.json.
"""

import argparse
import json
import os
import pathlib
import statistics
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_seqrnn  # noqa: E402
from keras_seqrnn import data  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from ucr import _override  # noqa: E402

RESULTS = pathlib.Path(__file__).parent / "results"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--set", type=_override, action="append", default=[],
                        metavar="KEY=VALUE", help="a plan setting to override")
    parser.add_argument("--out", type=pathlib.Path,
                        default=RESULTS / "japanese_vowels.json")
    args = parser.parse_args()
    (x_train, y_train), (x_test, y_test) = (
        keras_seqrnn.datasets.load_japanese_vowels()
    )
    padded, _ = data.pad(x_test)
    rows = []
    for seed in args.seeds:
        keras.backend.clear_session()
        plan, _ = keras_seqrnn.plan_training(
            x_train, y_train, seed=seed, **dict(args.set)
        )
        result = keras_seqrnn.fit_classifier(x_train, y_train, plan)
        predicted = result.model.predict(padded, verbose=0).argmax(-1)
        correct = int(np.sum(predicted == y_test))
        rows.append({
            "seed": seed,
            "accuracy": correct / len(y_test),
            "correct": correct,
            "seconds": round(result.seconds, 1),
            "plan": plan.to_dict(),
        })
        print(f"seed {seed}: {100 * correct / len(y_test):.2f} % "
              f"({correct} / {len(y_test)}) in {result.seconds:.0f} s",
              flush=True)
    median = statistics.median(r["accuracy"] for r in rows)
    print(f"median: {100 * median:.2f} %")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(
        {"overrides": dict(args.set), "rows": rows, "median": median,
         "version": keras_seqrnn.__version__}, indent=2) + "\n")


if __name__ == "__main__":
    main()
