"""torch's names around the tensor: devices, dtype names, the function forms of methods,
``Module.to``/``apply``."""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_rnn as tg


def test_devices_map_onto_backends():
    assert str(tg.device("cuda:0")) == "cuda:0" and tg.device("cpu") == tg.device("cpu")
    assert tg.device(tg.device("cuda"), 0).index == 0 and repr(tg.device("cpu")) == \
        "device(type='cpu')"
    for bad, error in [("tpu", ValueError), ("cuda:1", ValueError), ("cuda:x", ValueError),
                       (3, TypeError)]:
        with pytest.raises(error):
            tg.device(bad)
    x = tg.Tensor([1.0], backend="numba")
    assert x.device == tg.device("cpu") and x.to("cpu") is x and x.to(tg.device("cpu")) is x
    assert tg.cuda.device_count() == int(tg.cuda.is_available())
    if not tg.cuda.is_available():
        with pytest.raises(Exception, match="cupy|CuPy"):
            x.to("cuda")


def test_dtype_names_are_numpy_dtypes():
    assert tg.Tensor([1.0]).dtype == tg.float32 == tg.float and tg.long == tg.int64
    assert tg.Tensor([1.0]).to(tg.double).dtype == np.float64 and tg.bool == np.bool_
    assert tg.Tensor([1], dtype=tg.int8).dtype == np.int8


def test_function_forms_are_the_methods():
    a = tg.Tensor([[1.0, -2.0], [3.0, 4.0]], requires_grad=True)
    v = tg.Tensor([1.0, 1.0])
    assert tg.sum(a).item() == 6.0 and tg.sum(a, dim=1).tolist() == [-1.0, 7.0]
    assert tg.abs(a).tolist() == [[1, 2], [3, 4]] and tg.exp(tg.Tensor([0.0])).item() == 1.0
    assert tg.mv(a, v).tolist() == [-1.0, 7.0] and tg.dot(v, v).item() == 2.0
    assert tg.mm(a, a).tolist() == (a @ a).tolist() and tg.max(a).item() == 4.0
    assert tg.max(a, 1).indices.tolist() == [0, 1] and tg.pow(a, 2).tolist() == (a * a).tolist()
    assert tg.norm(tg.Tensor([3.0, 4.0])).item() == 5.0 and tg.square(v).tolist() == [1, 1]
    for call, message in [(lambda: tg.exp(np.zeros(2)), r"tg.exp\(\) expects input as a Tensor"),
                          (lambda: tg.mm(v, a), r"tg.mm\(\) takes two matrices"),
                          (lambda: tg.dot(v, a), r"tg.dot\(\) takes two vectors")]:
        with pytest.raises((TypeError, ValueError), match=message):
            call()


@pytest.mark.parametrize("p, reference", [
    ("fro", lambda a: np.sqrt((a * a).sum())), (1, lambda a: np.abs(a).sum()),
    (float("inf"), lambda a: np.abs(a).max()), (3, lambda a: (np.abs(a) ** 3).sum() ** (1 / 3))])
def test_norm_values_and_gradients(p, reference):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 4))
    x = tg.Tensor(a, dtype="float64", requires_grad=True)
    assert x.norm(p).item() == pytest.approx(reference(a), rel=1e-12)
    assert tg.gradcheck(lambda t: t.norm(p), [x])
    assert x.norm(p, dim=1, keepdim=True).shape == (3, 1)


def test_the_2_norm_of_zeros_has_gradient_zero_as_torch():
    z = tg.Tensor(np.zeros((2, 3)), dtype="float64", requires_grad=True)
    z.norm(dim=1).sum().backward()
    assert z.grad.tolist() == [[0.0] * 3] * 2
    with pytest.raises(ValueError, match="p must be 'fro', inf or a number > 0"):
        z.norm(-1)


def test_module_to_dtype_and_device_and_apply():
    net = tg.nn.Sequential(tg.nn.Linear(2, 3), tg.nn.ReLU(), tg.nn.Linear(3, 1))
    first = net.parameters()[0]
    assert net.double() is net and all(p.dtype == np.float64 for p in net.parameters())
    assert net.parameters()[0] is first  # the same objects, in place
    net.to("numba", tg.float32)
    assert all(p.dtype == np.float32 and p.backend == "numba" for p in net.parameters())
    with pytest.raises(TypeError, match="parameters must stay floats"):
        net.to(tg.int64)
    linears = []
    net.apply(lambda m: linears.append(m) if isinstance(m, tg.nn.Linear) else None)
    assert len(linears) == 2 and len(list(net.modules())) == 4
    assert [n for n, _ in net.named_children()] == ["0", "1", "2"]
    net.requires_grad_(False)
    assert not any(p.requires_grad for p in net.parameters())


def test_in_place_fillers_and_their_autograd_rule():
    x = tg.zeros(200, 50)
    assert x.fill_(2.5).tolist()[0][0] == 2.5 and x.add_(1, alpha=2).numpy().max() == 4.5
    x.normal_(1.0, 0.5, generator=tg.Generator().manual_seed(0))
    # 10,000 draws: the mean within 5 standard errors (0.005) of 1, the std within 2%
    assert abs(x.numpy().mean() - 1.0) < 0.025 and abs(x.numpy().std() - 0.5) < 0.01
    x.uniform_(-2.0, -1.0)
    assert x.numpy().min() >= -2.0 and x.numpy().max() < -1.0
    assert x.copy_(tg.ones(50)).numpy().min() == 1.0
    assert x.mul_(3).sub_(1).div_(2).tolist()[0][0] == 1
    with pytest.raises(TypeError, match="a float 0.5 cannot be stored in a int64"):
        tg.zeros(2, dtype=tg.int64).fill_(0.5)
    p = tg.nn.Linear(2, 3).W
    with pytest.raises(RuntimeError, match=r"fill_\(\) on a tensor that takes part in autograd"):
        p.fill_(0)
    with tg.no_grad():
        p.fill_(0)
    assert p.numpy().max() == 0


def test_nn_init_in_place_forms():
    init = tg.nn.init
    w = tg.nn.Linear(300, 100).W  # (in, out): the fans are 300 in, 100 out
    assert init.normal_(w, std=0.01) is w and abs(w.numpy().std() - 0.01) < 0.0005
    init.xavier_uniform_(w)
    bound = np.sqrt(6 / 400)
    assert np.abs(w.numpy()).max() <= bound and np.abs(w.numpy()).max() > 0.99 * bound
    init.kaiming_uniform_(w, nonlinearity="relu")
    assert np.abs(w.numpy()).max() <= np.sqrt(2) * np.sqrt(3 / 300)
    init.zeros_(w)
    assert not w.any() and init.constant_(w, 3).numpy().min() == 3
    with pytest.raises(ValueError, match=">= 2 dims"):
        init.xavier_uniform_(tg.zeros(3))
    with pytest.raises(TypeError, match="normal_ takes a Tensor"):
        init.normal_(np.zeros(3))


def test_nn_init_bounds_match_torch():
    torch = pytest.importorskip("torch")
    t = torch.empty(100, 300)  # torch's Linear(300, 100) weight: (out, in)
    ours = tg.nn.Linear(300, 100).W  # ours: (in, out)
    for name, kwargs in [("xavier_uniform_", {}), ("kaiming_uniform_", {"a": 0.5}),
                         ("kaiming_uniform_", {"nonlinearity": "tanh"})]:
        getattr(torch.nn.init, name)(t, **kwargs)
        getattr(tg.nn.init, name)(ours, **kwargs)
        assert np.abs(ours.numpy()).max() == pytest.approx(t.abs().max().item(), rel=0.01)


def test_sin_and_cos_values_and_gradients(backend="numpy"):
    a = np.linspace(-4, 4, 9)
    x = tg.Tensor(a, dtype="float64", requires_grad=True)
    np.testing.assert_allclose(tg.sin(x).numpy(), np.sin(a), rtol=1e-15)
    np.testing.assert_allclose(x.cos().numpy(), np.cos(a), rtol=1e-15)
    assert tg.gradcheck(lambda t: t.sin() * t.cos(), [x])
    assert tg.sin(tg.arange(3)).dtype == np.float32  # ints: float32, as torch
