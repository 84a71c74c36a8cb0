"""D2L §8.4.2: a hidden-state update is one matrix product of concatenations.

    X W_xh + H W_hh  ==  cat((X, H), axis=1) @ cat((W_xh, W_hh), axis=0)

X is (3, 1), W_xh (1, 4), H (3, 4), W_hh (4, 4), drawn from a normal distribution
as in the text. Run on every backend available here:  python examples/concat_identity.py
"""

import numpy as np

import tinygrad_rnn as tg


def both_sides(backend: str, seed: int = 0) -> tuple[tg.Tensor, tg.Tensor]:
    rng = np.random.default_rng(seed)
    X, W_xh = (tg.Tensor(rng.normal(size=s), backend=backend) for s in ((3, 1), (1, 4)))
    H, W_hh = (tg.Tensor(rng.normal(size=s), backend=backend) for s in ((3, 4), (4, 4)))
    separate = X @ W_xh + H @ W_hh
    concatenated = tg.cat((X, H), axis=1) @ tg.cat((W_xh, W_hh), axis=0)
    return separate, concatenated


def main() -> None:
    for backend in tg.backends.available():
        separate, concatenated = both_sides(backend)
        print(f"--- backend {backend!r} ---")
        print("X @ W_xh + H @ W_hh =\n", separate.numpy())
        print("cat((X, H), 1) @ cat((W_xh, W_hh), 0) =\n", concatenated.numpy())
        # float32: each entry is a 5-term dot product, so they agree to a few ulps
        agree = np.allclose(separate.numpy(), concatenated.numpy(), rtol=1e-5, atol=1e-6)
        print("agree:", agree)
        if not agree:
            raise SystemExit(f"the identity failed on backend {backend!r}")


if __name__ == "__main__":
    main()
