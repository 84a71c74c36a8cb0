"""The cupy backend's CUDA C++ compiles, on machines without a GPU too (by nvcc).

The cupy tests run only where there is a GPU, so a typo in a kernel could sit
unnoticed on CPU-only machines. These tests hand every kernel the backend builds to
the CUDA toolkit's compiler: each RawModule (``backends/cuda/<module>.cu``, as the
backend reads it) with each template instance it asks for, and each ElementwiseKernel
body wrapped the way CuPy wraps it (inputs as ``const T`` locals, outputs as ``T&``,
the flat index ``i``), at float32 and float64. A compiler error names the real file
and line. They skip,
with the reason, where ``nvcc`` is not on the PATH. CuPy compiles with NVRTC, which
has the same front end; what nvcc cannot check is the kernels' behaviour, which
``test_cupy.py`` tests on a GPU.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from tinygrad_rnn.backends._cupy_kernels import (
    CUDA_DIR,
    ELEMENTWISE_SPECS,
    RAW_MODULES,
    cuda_source,
)

NVCC = shutil.which("nvcc")
pytestmark = pytest.mark.skipif(NVCC is None, reason="nvcc (the CUDA toolkit) is not on PATH")

CTYPES = {"T": "T", "int64": "long long", "int32": "int", "float32": "float", "float64": "double"}
PARAM = re.compile(r"^(\w+) (\w+)$")


def compile_ptx(source: str, tmp_path: Path, *options: str) -> str:
    """``source`` compiled to PTX (warnings are errors); a failure shows nvcc's message."""
    cu = tmp_path / "kernels.cu"
    cu.write_text(source)
    ptx = tmp_path / "kernels.ptx"
    run = subprocess.run(
        [NVCC, "--ptx", "-Werror", "all-warnings", *options, str(cu), "-o", str(ptx)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, f"nvcc failed:\n{run.stdout}{run.stderr}"
    return ptx.read_text()


def entries(ptx: str) -> list[str]:
    """The kernels (``.entry`` names, mangled) a PTX file defines."""
    return re.findall(r"^\.visible \.entry (\w+)\(", ptx, flags=re.M)


def instantiating(names: list[str]) -> str:
    """Host code that takes each template instance's address, so nvcc compiles each one
    (a template's body is only fully checked once it is instantiated)."""
    return "\nvoid* tg_instances[] = {" + ", ".join(f"(void*)&{n}" for n in names) + "};\n"


def wrap_elementwise(in_params: str, out_params: str, operation: str, name: str) -> str:
    """An ElementwiseKernel as a template kernel over T, as CuPy lays one out."""
    params, body = [], []
    for spec, out in ((in_params, False), (out_params, True)):
        for param in spec.split(","):
            match = PARAM.match(param.strip())
            assert match, f"{name}: cannot read the parameter {param!r}"
            ctype, var = CTYPES[match[1]], match[2]
            params.append(f"{ctype}* _raw_{var}")
            local = f"{ctype}&" if out else f"const {ctype}"
            body.append(f"{local} {var} = _raw_{var}[i];")
    return (
        "template <typename T>\n"
        f"__global__ void {name}({', '.join(params)}, const ptrdiff_t n) {{\n"
        "    for (ptrdiff_t i = blockIdx.x * blockDim.x + threadIdx.x; i < n;"
        " i += gridDim.x * blockDim.x) {\n"
        f"        {' '.join(body)}\n"
        f"        {operation};\n"
        "    }\n}\n"
    )


def test_every_cu_file_is_a_module_the_backend_builds():
    assert sorted(p.stem for p in CUDA_DIR.glob("*.cu")) == sorted(RAW_MODULES)


@pytest.mark.parametrize("module", sorted(RAW_MODULES))
def test_raw_module_compiles_every_instance(module, tmp_path):
    source, names = cuda_source(f"{module}.cu"), RAW_MODULES[module]
    options = ("-DTG_UNROLL=8",) if module == "rnn_rows" else ()  # as the backend's default
    ptx = compile_ptx(source + instantiating(names), tmp_path, *options)
    assert len(entries(ptx)) == len(names), f"{module}: {entries(ptx)} for {names}"


def test_rows_kernels_compile_without_unrolling(tmp_path):
    """``rnn_row_unroll = 1`` (``benchmarks/gpu_rnn.py`` compares unrollings) is valid too."""
    source, names = cuda_source("rnn_rows.cu"), RAW_MODULES["rnn_rows"]
    ptx = compile_ptx(source + instantiating(names), tmp_path, "-DTG_UNROLL=1")
    assert len(entries(ptx)) == len(names)


def test_the_cu_files_compile_as_they_are_with_their_includes(tmp_path):
    """The files are real CUDA sources: nvcc, including the header itself, compiles them
    all (one translation unit) to the same kernels as the strings the backend builds."""
    source = "".join(f'#include "{(CUDA_DIR / f"{m}.cu").as_posix()}"\n' for m in RAW_MODULES)
    names = [name for m in RAW_MODULES for name in RAW_MODULES[m]]
    ptx = compile_ptx(source + instantiating(names), tmp_path, "-DTG_UNROLL=8", f"-I{CUDA_DIR}")
    assert len(entries(ptx)) == len(names)


@pytest.mark.parametrize(
    "module, file, old, new",
    [
        ("multi", "multi.cu", "acc += v * v;", "acc += v * w;"),  # after the included header
        ("softmax_xent", "block_reduce.cuh", "return b > a ? b : a;", "return b > a ? b : c;"),
    ],
)
def test_a_compiler_error_names_the_real_file_and_line(module, file, old, new, tmp_path):
    """The ``#line`` directives: nvcc's message points at the line of ``backends/cuda``'s
    file that holds the error, not at a line of the string it was handed."""
    lines = (CUDA_DIR / file).read_text(encoding="utf-8").split("\n")
    line = next(n for n, text in enumerate(lines, start=1) if old in text)
    source = cuda_source(f"{module}.cu")
    assert source.count(old) == 1
    broken = source.replace(old, new) + instantiating(RAW_MODULES[module])
    with pytest.raises(AssertionError, match="nvcc failed") as failure:
        compile_ptx(broken, tmp_path)
    assert f"{(CUDA_DIR / file).as_posix()}({line}): error" in str(failure.value)


def test_elementwise_kernels_compile_at_both_float_dtypes(tmp_path):
    source = "".join(wrap_elementwise(*spec) for spec in ELEMENTWISE_SPECS)
    names = [f"{spec[3]}<{c}>" for spec in ELEMENTWISE_SPECS for c in ("float", "double")]
    ptx = compile_ptx(source + instantiating(names), tmp_path)
    assert len(entries(ptx)) == len(names)
    assert len({spec[3] for spec in ELEMENTWISE_SPECS}) == len(ELEMENTWISE_SPECS), "names repeat"


@pytest.mark.parametrize(
    "old, new",
    [
        ("acc += v * v;", "acc += v * w;"),  # an undefined name
        ("Zx[row + j] + tg_sum_slices", "Zx[row + j].x + tg_sum_slices"),  # only on instantiation
        ("tanh(zx + hw)", "tanh(zx + hw"),  # in an ElementwiseKernel body
    ],
)
def test_a_typo_in_a_kernel_fails_the_check(old, new, tmp_path):
    """The check is not vacuous: each typo above fails it, the second one only because
    the template is instantiated (its error depends on T)."""
    for module, names in RAW_MODULES.items():
        source = cuda_source(f"{module}.cu")
        if old in source:
            broken = source.replace(old, new) + instantiating(names)
            break
    else:
        spec = next((s for s in ELEMENTWISE_SPECS if old in s[2]), None)
        assert spec is not None, f"{old!r} is in no kernel any more: update this test"
        in_params, out_params, operation, name = spec
        broken = wrap_elementwise(in_params, out_params, operation.replace(old, new), name)
        broken += instantiating([f"{name}<float>"])
    with pytest.raises(AssertionError, match="nvcc failed"):
        compile_ptx(broken, tmp_path, "-DTG_UNROLL=8")
