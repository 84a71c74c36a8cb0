#!/usr/bin/env bash
# GPU check of the cupy backend: one script for a fresh GPU machine (CuPy, PyTorch, numba,
# pytest and hypothesis installed; nothing is downloaded). Its stage limits add up to
# 5 minutes (the CPU training run, TRAIN_CPU=1, takes what is left of 285 s).
#
#   1. install the project (pip install -e, no deps, no build isolation; failing that,
#      a PYTHONPATH package of links to the tree)
#   2. tests: every cupy-marked / cupy-parametrized test (pytest -m cupy, hypothesis
#      profile "dev"), then the rest of tests/test_cupy.py
#   3. the recurrence alone: benchmarks/gpu_rnn.py, the loop and rows strategies
#      (checked against float64 NumPy) beside cuDNN's nn.RNN
#   4. tokens/s: benchmarks/charlm.py --backends cupy --gpu-only at h = 32, 128 and 512,
#      the step replayed from a CUDA graph (train's default on cupy; the one judged) and
#      run eagerly, beside PyTorch's cuDNN nn.RNN on the same GPU ("PyTorch nn.RNN (cuda)")
#   5. a per-op profile of the training step (benchmarks/profile_step.py) at h = 32, 512
#   6. D2L §8.5 (h = 512, lr 1, batch 32 x 35 steps) for 100 epochs with --backend cupy,
#      by default (a CUDA graph) and with --no-cuda-graph: the perplexity, against ~7.2
#      on the CPU at epoch 100; the same run on the CPU (numba) too when time is left
#      (TRAIN_CPU=0: never)
#
# STAGES="tests rnn bench profile train" picks stages; T_TESTS, T_RNN, T_BENCH,
# T_PROFILE, T_TRAIN are their time limits (s), BENCH_REPEATS and BENCH_SECONDS the
# benchmark's rounds.
#
# Output: $OUT/gpu_check.log when $OUT is set (and on stdout), else stdout only; a summary
# table comes last. The book: $TINYGRAD_RNN_DATA, else $BOOK, else shared/data/timemachine.txt
# in the tree, else ../shared/data/timemachine.txt; without it the training run uses the
# repository's own text and its perplexity is not comparable with D2L's.
#
#   bash benchmarks/gpu_check.sh                   # from the repository root, or anywhere
#   PYTHON=/path/to/python3 bash benchmarks/gpu_check.sh
set -u
cd "$(dirname "$0")/.." || exit 2
ROOT=$(pwd)
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
# Stage time limits (s): 100 + 15 + 30 + 60 + 2 x 15 + 2 x 30 = 295, the install aside.
# The bench measures 3 rows x 3 h x BENCH_REPEATS rounds of BENCH_SECONDS (27 s), plus
# its workers' start-up (importing torch, compiling kernels).
T_TESTS=${T_TESTS:-100} T_REST=15 T_RNN=${T_RNN:-30} T_BENCH=${T_BENCH:-60}
T_PROFILE=${T_PROFILE:-15} T_TRAIN=${T_TRAIN:-30}
# The stages to run, in this order (all by default): tests rnn bench profile train
STAGES=${STAGES:-tests rnn bench profile train}
wants() { [[ " $STAGES " == *" $1 "* ]]; }

declare -a SUMMARY=()
FAILED=0
note() { # stage, status (ok, FAIL, SLOW, HIGH, info, skip), what
    SUMMARY+=("$(printf '%-8s %-5s %s' "$1" "$2" "$3")")
    if [ "$2" = FAIL ]; then FAILED=1; fi
    return 0
}
outcome() { # stage, exit status, what ran: ok on status 0, else FAIL with the status
    if [ "$2" -eq 0 ]; then note "$1" ok "$3"; else note "$1" FAIL "$3: exit $2"; fi
}
banner() { printf '\n===== %s (t=%ss) =====\n' "$1" "$SECONDS"; }

ours() { # whether tinygrad_rnn (and its backends) import from this tree
    $PY -c "
import os, sys
import tinygrad_rnn.backends.cupy_backend as m
sys.exit(0 if os.path.realpath(m.__file__).startswith(os.path.realpath('$ROOT') + os.sep) else 1)
" 2>/dev/null
}

install_project() {
    banner "install"
    if $PY -m pip install --no-deps --no-build-isolation -q -e . >/tmp/gpu_check_pip.log 2>&1 \
        && ours; then
        note install ok "pip install -e . (no deps)"
        return
    fi
    tail -3 /tmp/gpu_check_pip.log
    # No installer: a package of links, tinygrad_rnn/* plus backends/ as tinygrad_rnn/backends.
    # PYTHONSAFEPATH keeps the tree's own tinygrad_rnn/ (no backends/ in it) off sys.path.
    local site
    site=$(mktemp -d)/site
    mkdir -p "$site/tinygrad_rnn"
    for f in "$ROOT"/tinygrad_rnn/*; do ln -s "$f" "$site/tinygrad_rnn/"; done
    ln -s "$ROOT/backends" "$site/tinygrad_rnn/backends"
    export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}" PYTHONSAFEPATH=1
    if ours; then
        note install ok "PYTHONPATH=$site (pip install -e failed)"
    else
        note install FAIL "tinygrad_rnn does not import"
    fi
}

find_book() {
    local c
    for c in "${TINYGRAD_RNN_DATA:-}" "${BOOK:-}" shared/data/timemachine.txt \
        ../shared/data/timemachine.txt; do
        if [ -n "$c" ] && [ -f "$c" ]; then
            readlink -f "$c"
            return 0
        fi
    done
    return 1
}

environment() {
    banner "environment"
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
    $PY - <<'EOF'
import platform
print("Python", platform.python_version())
for name in ("numpy", "cupy", "torch", "numba", "pytest", "hypothesis"):
    try:
        module = __import__(name)
        print(f"{name} {module.__version__}")
    except Exception as e:  # noqa: BLE001
        print(f"{name}: not importable ({e})")
try:
    import torch

    print("torch.cuda.is_available():", torch.cuda.is_available())
except Exception:  # noqa: BLE001
    pass
EOF
    if BOOK_PATH=$(find_book); then
        echo "book: $BOOK_PATH"
        BOOK_OK=1
    else
        BOOK_PATH=$(mktemp -d)/corpus.txt
        cat README.md docs/*.md >"$BOOK_PATH"
        echo "book: NOT FOUND; training on the repository's text instead ($BOOK_PATH)"
        BOOK_OK=0
    fi
    export TINYGRAD_RNN_DATA=$BOOK_PATH # the benchmark and the CLI read it: no download
    local why
    if why=$($PY -c "
import sys
import tinygrad_rnn as tg
print('backends available:', tg.backends.available())
try:
    tg.backends.get('cupy')
except tg.backends.BackendUnavailable as e:
    sys.exit(str(e))
" 2>&1); then
        echo "$why"
        note backend ok "cupy available"
    else
        echo "$why"
        note backend FAIL "cupy unavailable: ${why##*$'\n'}"
        return 1
    fi
}

run_tests() {
    banner "tests: pytest -m cupy, then tests/test_cupy.py"
    local xdist=() status
    if $PY -c "import xdist" 2>/dev/null; then xdist=(-n 8); fi # compiles in parallel
    HYPOTHESIS_PROFILE=dev timeout -k 10 -s INT "$T_TESTS" \
        $PY -m pytest -q -p no:cacheprovider "${xdist[@]}" -m cupy --tb=short -rfE --durations=8 tests/
    status=$?
    if [ $status -eq 0 ]; then
        note tests ok "pytest -m cupy"
    elif [ $status -ge 124 ]; then
        note tests FAIL "pytest -m cupy stopped after ${T_TESTS}s (see the log)"
    else
        note tests FAIL "pytest -m cupy exit $status (see the log)"
    fi
    timeout -k 10 "$T_REST" $PY -m pytest -q -p no:cacheprovider -m "not cupy" tests/test_cupy.py
    outcome tests $? "tests/test_cupy.py, the part without a GPU"
}

run_rnn() {
    banner "the recurrence alone: loop, rows and cuDNN (benchmarks/gpu_rnn.py)"
    timeout -k 10 "$T_RNN" $PY benchmarks/gpu_rnn.py --hidden ${RNN_HIDDEN:-32 128 256 512 1024} \
        --repeat 30
    outcome rnn $? "benchmarks/gpu_rnn.py (its table above)"
}

run_profile() {
    banner "where the time of a step goes (host time per op; GPU waits land in 'everything else')"
    local h
    for h in 32 512; do
        timeout -k 10 "$T_PROFILE" $PY benchmarks/profile_step.py --backend cupy --hidden $h \
            --steps 40 || note profile FAIL "profile_step.py h=$h"
    done
}

run_bench() {
    banner "tokens/s: charlm.py --backends cupy (h = 32, 128, 512)"
    local out status
    out=$(mktemp)
    timeout -k 10 "$T_BENCH" $PY benchmarks/charlm.py --backends cupy --gpu-only \
        --hidden 32 128 512 --threads 1 --repeats ${BENCH_REPEATS:-3} \
        --seconds ${BENCH_SECONDS:-1.0} | tee "$out"
    status=${PIPESTATUS[0]}
    if [ "$status" -ne 0 ]; then
        note bench FAIL "charlm.py exit $status"
        return
    fi
    if ! grep -q "vs PyTorch nn.RNN (cuda)" "$out"; then
        note bench FAIL "no PyTorch nn.RNN (cuda) row: torch.cuda.is_available() is False"
        return
    fi
    # ours against cuDNN at each h: at least 1.0x at h = 512, ahead at 32 and 128. The
    # step replayed from a CUDA graph is what train runs on cupy by default, so it is
    # the one judged; the step run eagerly (train --no-cuda-graph) is for information.
    local h ratio impl verdict
    for impl in "tinygrad_rnn cupy (CUDA graph)" "tinygrad_rnn cupy"; do
        for h in 32 128 512; do
            ratio=$(grep -F "| $h | 1 | $impl |" "$out" | awk -F'|' '{print $(NF-1)}' | tr -d ' ×')
            if [ -z "$ratio" ] || [ "$ratio" = "–" ]; then
                note bench FAIL "h=$h: no '$impl' row or no PyTorch (cuda) row"
                continue
            fi
            verdict=info
            if [ "$impl" != "tinygrad_rnn cupy" ]; then
                verdict=$(awk -v r="$ratio" -v h="$h" \
                    'BEGIN { print ((h == 512 ? r >= 1.0 : r > 1.0) ? "ok" : "SLOW") }')
            fi
            note bench "$verdict" "h=$h: $impl = ${ratio}x PyTorch nn.RNN (cuda)"
        done
    done
}

train_run() { # backend, time limit (s), metrics file, more options
    timeout -k 10 "$2" $PY -m tinygrad_rnn train --backend "$1" --epochs 100 --quiet \
        --metrics "$3" "${@:4}" | tee "$3.out"
    return "${PIPESTATUS[0]}"
}

run_train() {
    local dir ppl_gpu ppl_cpu status left flag name
    dir=${OUT:-$(mktemp -d)}
    for flag in "" --no-cuda-graph; do # the default on cupy replays a CUDA graph
        name="cupy${flag:+ $flag}"
        banner "D2L §8.5, 100 epochs, --backend $name"
        train_run cupy "$T_TRAIN" "$dir/train_cupy$flag.jsonl" $flag
        status=$?
        ppl_gpu=$(sed -n 's/^perplexity \([0-9.]*\),.*/\1/p' "$dir/train_cupy$flag.jsonl.out" \
            | tail -1)
        rm -f "$dir/train_cupy$flag.jsonl.out"
        if [ $status -ne 0 ] || [ -z "$ppl_gpu" ]; then
            note train FAIL "$name: exit $status"
        elif [ "$BOOK_OK" = 1 ]; then
            note train "$(awk -v p="$ppl_gpu" 'BEGIN { print (p <= 8 ? "ok" : "HIGH") }')" \
                "$name: perplexity $ppl_gpu at epoch 100 (CPU: ~7.2)"
        else
            note train ok "$name: perplexity $ppl_gpu (no book: not comparable)"
        fi
    done
    left=$((285 - SECONDS))
    if [ "${TRAIN_CPU:-1}" = 0 ]; then
        return
    fi
    if [ $left -lt 30 ]; then
        note train skip "CPU run: ${left}s left"
        return
    fi
    banner "the same run on the CPU (numba), for comparison"
    train_run numba "$((left < 90 ? left : 90))" "$dir/train_numba.jsonl"
    ppl_cpu=$(sed -n 's/^perplexity \([0-9.]*\),.*/\1/p' "$dir/train_numba.jsonl.out" | tail -1)
    rm -f "$dir/train_numba.jsonl.out"
    if [ -n "$ppl_cpu" ]; then
        note train info "numba (CPU): perplexity $ppl_cpu at epoch 100"
    else
        note train skip "CPU run did not finish in time"
    fi
}

main() {
    echo "gpu_check.sh: $(date -u '+%Y-%m-%d %H:%M:%S UTC') in $ROOT"
    install_project
    if environment; then
        if wants tests; then run_tests; fi
        if wants rnn; then run_rnn; fi
        if wants bench; then run_bench; fi
        if wants profile; then run_profile; fi
        if wants train; then run_train; fi
    fi
    banner "summary"
    printf '%s\n' "${SUMMARY[@]}"
    echo "total ${SECONDS}s; $([ $FAILED = 0 ] && echo PASSED || echo FAILED)"
    return $FAILED
}

if [ -n "${OUT:-}" ]; then
    mkdir -p "$OUT"
    main 2>&1 | tee "$OUT/gpu_check.log"
    exit "${PIPESTATUS[0]}"
fi
main
