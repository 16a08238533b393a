#!/bin/sh
# dp-train.sh - data-parallel training (examples/dataparallel) through `clai train`, on 1600 samples of
# Fashion-MNIST in global batches of 32 (50 steps): the per-step loss of several ranks matches one process
# within 1e-5 (relative) at every step, and two runs with the same number of ranks are bitwise identical
# (every step's loss and the checkpoint: weights, Adam state). Checked for two devices in one process
# (--devices 0,1 on POCL's two CPU devices, POCL_DEVICES="pthread pthread") and, when the build has MPI and
# mpirun is installed, for `mpirun --oversubscribe -np 2` and `-np 4`; an MPI run resumed from its
# checkpoint ends with the bytes of an uninterrupted one, and a rank without its device stops every rank
# with the reason; --json reports the ranks. Skipped without the data set, and in small mode (CLAI_TEST_SIZE=small: rusticl and
# Oclgrind, where 50 steps take minutes). Prints TAP.
set -u
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"; export ASAN_OPTIONS
builddir=${CLAI_BUILDDIR:-.}
tool="$builddir/tools/clai"
data=${FMNIST_DATA:-/usr/share/datasets/fashion-mnist}
if [ ! -r "$data/train-images-idx3-ubyte.gz" ] || [ ! -r "$data/t10k-labels-idx1-ubyte.gz" ]; then
  echo "1..0 # SKIP the data set is not installed (apt-get install dataset-fashion-mnist)"
  exit 0
fi
if [ "${CLAI_TEST_SIZE:-}" = small ]; then
  echo "1..0 # SKIP small mode: 50 training steps per run need a faster device (run on POCL)"
  exit 0
fi
dir=$(mktemp -d "${CLAI_TEST_TMP:-${TMPDIR:-/tmp}}/tmp-dp-train.XXXXXX") || exit 1
trap 'rm -rf "$dir"' EXIT
# Open MPI as root (CI), on shared memory only, more ranks than cores.
OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl=self,vader
export OMPI_ALLOW_RUN_AS_ROOT OMPI_ALLOW_RUN_AS_ROOT_CONFIRM OMPI_MCA_btl
args="--data $data --train-limit 1600 --batch 32 --test-limit 200 --epochs 1"
echo "1..7"
fails=0
report() { # N NAME OK [SKIP-REASON]
  if [ -n "${4:-}" ]; then echo "ok $1 - $2 # SKIP $4"
  elif [ "$3" -eq 1 ]; then echo "ok $1 - $2"
  else echo "not ok $1 - $2"; fails=$((fails + 1)); fi
}
# close REF OTHER: every step's loss within 1e-5 relative; prints the largest relative difference
close() {
  [ "$(wc -l <"$1")" -eq 50 ] && [ "$(wc -l <"$2")" -eq 50 ] || return 1
  paste "$1" "$2" | awk '{ d = ($6 - $3) / $3; if (d < 0) d = -d; if (d > m) m = d; if (d > 1e-5) bad = 1 }
    END { printf "# largest relative difference of the 50 step losses: %.3g\n", m; exit bad }'
}
run() { # NAME [launcher...] -- [extra options]: one run into $dir/NAME.{loss,ckpt,out}
  name=$1
  shift
  "$@" $args --loss-log "$dir/$name.loss" --checkpoint "$dir/$name.ckpt" >"$dir/$name.out" 2>&1 ||
    { sed 's/^/# /' "$dir/$name.out" | tail -n 20; return 1; }
}

# 1. The reference: one process, one device.
ok=0
run one "$tool" train && ok=1
report 1 "one process: 50 steps" "$ok"

# 2-3. Two devices in one process (POCL's two CPU devices).
n=$(POCL_DEVICES="pthread pthread" "$tool" devices 2>/dev/null | grep -c '^[ *] [0-9]*: ')
if [ "$n" -ge 2 ] && [ -s "$dir/one.loss" ]; then
  ok=0
  run dev "env" POCL_DEVICES="pthread pthread" "$tool" train --devices 0,1 && close "$dir/one.loss" "$dir/dev.loss" && ok=1
  report 2 "--devices 0,1: every step's loss within 1e-5 of one process" "$ok"
  ok=0
  run dev2 "env" POCL_DEVICES="pthread pthread" "$tool" train --devices 0,1 &&
    cmp -s "$dir/dev.loss" "$dir/dev2.loss" && cmp -s "$dir/dev.ckpt" "$dir/dev2.ckpt" && ok=1
  report 3 "--devices 0,1 twice: the same bits (losses and checkpoint)" "$ok"
else
  report 2 "--devices 0,1" 1 "POCL_DEVICES=\"pthread pthread\" does not give two devices here"
  report 3 "--devices 0,1 twice" 1 "POCL_DEVICES=\"pthread pthread\" does not give two devices here"
fi

# 4-7. MPI.
why=
grep -q '^#define HAVE_MPI 1' "$builddir/config.h" 2>/dev/null || why="built without MPI (libopenmpi-dev)"
[ -z "$why" ] && ! command -v mpirun >/dev/null 2>&1 && why="no mpirun (openmpi-bin)"
if [ -n "$why" ]; then
  for i in 4 5 6 7; do report $i "mpirun" 1 "$why"; done
  [ "$fails" -eq 0 ]
  exit
fi
mpi="mpirun --oversubscribe -np"
ok=0
run np2 $mpi 2 "$tool" train && close "$dir/one.loss" "$dir/np2.loss" &&
  run np2b $mpi 2 "$tool" train --json && cmp -s "$dir/np2.loss" "$dir/np2b.loss" && cmp -s "$dir/np2.ckpt" "$dir/np2b.ckpt" &&
  grep -q "^rank 1 (mpi)" "$dir/np2.out" && grep -q "\"ranks\": 2," "$dir/np2b.out" && grep -q "\"parallel\": \"mpi\"" "$dir/np2b.out" && ok=1
report 4 "mpirun -np 2: every step's loss within 1e-5 of one process; two runs, the same bits" "$ok"
ok=0
run np4 $mpi 4 "$tool" train && close "$dir/one.loss" "$dir/np4.loss" &&
  run np4b $mpi 4 "$tool" train && cmp -s "$dir/np4.loss" "$dir/np4b.loss" && cmp -s "$dir/np4.ckpt" "$dir/np4b.ckpt" &&
  grep -q '^rank 3 (mpi)' "$dir/np4.out" && ok=1
report 5 "mpirun -np 4: every step's loss within 1e-5 of one process; two runs, the same bits" "$ok"

# 6. Resume under MPI: 2 epochs of 10 steps straight == 1 epoch, then --resume to 2.
ok=0
args="--data $data --train-limit 320 --batch 32 --test-limit 100"
if $mpi 2 "$tool" train $args --epochs 2 --checkpoint "$dir/ra.ckpt" >"$dir/ra.out" 2>&1 &&
   $mpi 2 "$tool" train $args --epochs 1 --checkpoint "$dir/rb.ckpt" >"$dir/rb1.out" 2>&1 &&
   $mpi 2 "$tool" train $args --epochs 2 --checkpoint "$dir/rb.ckpt" --resume >"$dir/rb.out" 2>&1; then
  cmp -s "$dir/ra.ckpt" "$dir/rb.ckpt" && grep -q resuming "$dir/rb.out" && ok=1
fi
[ "$ok" -eq 1 ] || sed 's/^/# /' "$dir/ra.out" "$dir/rb1.out" "$dir/rb.out" | tail -n 30
report 6 "mpirun -np 2: 1 epoch + --resume + 1 epoch == 2 epochs (checkpoint bytes)" "$ok"

# 7. A rank without its device (--devices 0,9: rank 1 asks for device 9): every rank stops, with the reason.
ok=0
timeout 120 $mpi 2 "$tool" train $args --epochs 1 --devices 0,9 >"$dir/bad.out" 2>&1
st=$?
[ "$st" -ne 0 ] && [ "$st" -ne 124 ] && grep -q 'rank 0 of 2\]: stopping: rank 1: no OpenCL context on device 9' "$dir/bad.out" &&
  ok=1
[ "$ok" -eq 1 ] || { echo "# exit $st"; sed 's/^/# /' "$dir/bad.out" | head -n 20; }
report 7 "mpirun -np 2, rank 1 without a device: every rank stops with the reason, no hang" "$ok"
[ "$fails" -eq 0 ]
