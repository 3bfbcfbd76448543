#!/usr/bin/python3
"""Reference vectors for Backprop's NumpyRandom: numpy's legacy np.random.seed(int) / RandomState stream.

Run with Debian's numpy (apt-get install python3-numpy):
    /usr/bin/python3 tools/numpy_vectors.py > tests/Backprop.Tests/Fixtures/numpy_random.json
Floats are written with repr(), which round-trips exactly.
"""
import json
import numpy as np

SEEDS = [0, 1, 42, 2**32 - 1]


def draws(seed):
    rs = np.random.RandomState(seed)
    out = {"seed": seed}

    def fresh():
        rs.seed(seed)
        return rs

    out["randn_20"] = fresh().randn(20).tolist()
    r = fresh()
    out["randn_3_then_4"] = [r.randn(3).tolist(), r.randn(4).tolist()]   # odd count: the cached f*x1 carries over
    r = fresh()
    out["randn_1_rand_2_randn_2"] = [r.randn(1).tolist(), r.rand(2).tolist(), r.randn(2).tolist()]  # the cache survives other draws
    out["randn_4x10"] = fresh().randn(4, 10).ravel().tolist()
    out["rand_20"] = fresh().rand(20).tolist()
    out["choice_1000_50"] = fresh().choice(1000, 50).tolist()
    out["choice_5_20"] = fresh().choice(5, 20).tolist()
    out["choice_30_10_noreplace"] = fresh().choice(30, 10, replace=False).tolist()
    out["randint_0_10_20"] = fresh().randint(0, 10, 20).tolist()
    out["randint_m5_17_20"] = fresh().randint(-5, 17, 20).tolist()
    out["randint_0_2pow33_5"] = fresh().randint(0, 2**33, 5).tolist()     # range above 2^32: 64-bit masked draws
    out["permutation_30"] = fresh().permutation(30).tolist()
    r = fresh()
    a = np.arange(12.0)
    r.shuffle(a)
    out["shuffle_12"] = a.tolist()
    return out


print(json.dumps({"numpy_version": np.__version__, "seeds": [draws(s) for s in SEEDS]}, indent=1))
