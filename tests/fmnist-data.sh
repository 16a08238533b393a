#!/bin/sh
# fmnist-data.sh - the Fashion-MNIST trainer on missing and malformed data files: a missing directory, a
# truncated .gz (also one cut only in its gzip trailer), a wrong IDX magic, a header that promises more
# images than the file holds, labels that do not match the images, and a label out of range must each end
# with exit status 1 and a message that names the problem and Debian's dataset-fashion-mnist package, never
# a crash. Also the usage errors (exit 2), a tiny well-formed synthetic data set that trains, and --resume
# from checkpoints whose fields were forged (with a valid checksum, by tests/test-fmnist-files forge): each
# refused with exit status 1 and a message naming the field. Needs no installed data set. Prints TAP.
set -u
# Under --enable-sanitizers the trainer runs without LeakSanitizer's exit-time check: its stop-the-world
# tracer crashed once ("Tracer caught signal 11") against POCL's worker threads in a loaded CI run, after
# a correct run. Leaks in the library stay checked by the cmocka tests, which run with it.
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"; export ASAN_OPTIONS
builddir=${CLAI_BUILDDIR:-.}
prog="$builddir/examples/fashion-mnist/fashion-mnist"
tool="$builddir/tools/clai"
forge="$builddir/tests/test-fmnist-files"
# Small mode (CLAI_TEST_SIZE=small, slow devices: a training step of 64 samples takes ~15 s under Oclgrind):
# the synthetic set trains for one epoch of one step of 16 samples and the checkpoint comes from the same; the
# CNN is not trained.
# Under Oclgrind (CLAI_TEST_OCLGRIND=1: evaluating 100 images takes ~75 s there) the trainer is tested on the
# first 16 test images, 15 of them one class (the images are all alike, so the trained model gives them one
# answer: 15 of 16 right), and the tests of host code alone (bad files, bad options, forged checkpoints: a
# start-up each, seconds in the simulator) skip. 16 rows, not 20, keep the evaluation's products on the
# skinny kernels (M <= 16), as the training step's are.
small=0 limit="" epochs2=2 tests="" acc=0.9900
[ "${CLAI_TEST_SIZE:-}" = small ] && small=1 limit="--train-limit 16" epochs2=1
[ "${CLAI_TEST_OCLGRIND:-0}" = 1 ] && tests="--test-limit 16" acc=0.9375
dir=$(mktemp -d "${CLAI_TEST_TMP:-${TMPDIR:-/tmp}}/tmp-fmnist-data.XXXXXX") || exit 1
trap 'rm -rf "$dir"' EXIT

# idx_images FILE COUNT [MAGIC_LOW_BYTE]: COUNT images of 28x28, every pixel 64, gzip'd.
# idx_labels FILE COUNT [MAGIC_LOW_BYTE] [FIRST_LABEL]: the first label FIRST_LABEL (default 1), the rest 0.
be32() { printf "\\$(printf %03o $(($1 >> 24 & 255)))\\$(printf %03o $(($1 >> 16 & 255)))"; \
         printf "\\$(printf %03o $(($1 >> 8 & 255)))\\$(printf %03o $(($1 & 255)))"; }
idx_images() {
  { be32 $((0x800 + ${3:-3})); be32 "$2"; be32 28; be32 28
    head -c $(($2 * 784)) /dev/zero | tr '\0' '\100'; } | gzip -c >"$1"
}
idx_labels() {
  { be32 $((0x800 + ${3:-1})); be32 "$2"
    printf "\\$(printf %03o "${4:-1}")"; head -c $(($2 - 1)) /dev/zero; } | gzip -c >"$1"
}
# A well-formed set: 300 training and 100 test samples.
good() {
  rm -rf "$dir/d" && mkdir -p "$dir/d"
  idx_images "$dir/d/train-images-idx3-ubyte.gz" 300
  idx_labels "$dir/d/train-labels-idx1-ubyte.gz" 300
  idx_images "$dir/d/t10k-images-idx3-ubyte.gz" 100
  idx_labels "$dir/d/t10k-labels-idx1-ubyte.gz" 100
}

n=0
fails=0
# expect NAME STATUS WORD1 WORD2 -- ARGS...: runs the trainer, checks the exit status and two words of stderr.
expect() {
  name=$1 want=$2 w1=$3 w2=$4
  shift 5
  n=$((n + 1))
  if [ "${CLAI_TEST_OCLGRIND:-0}" = 1 ]; then # each start-up is seconds in the simulator, and checks host code
    echo "ok $n - $name # SKIP under Oclgrind: the trainer's host code, tested on the other implementations"
    return
  fi
  "$@" >"$dir/out" 2>"$dir/err"
  got=$?
  if [ "$got" -eq "$want" ] && grep -q -- "$w1" "$dir/err" && grep -q -- "$w2" "$dir/err"; then
    echo "ok $n - $name"
  else
    echo "not ok $n - $name: exit $got (want $want), stderr:"
    sed 's/^/# /' "$dir/err"
    fails=$((fails + 1))
  fi
}

echo "1..17"
expect "missing directory" 1 "No such file" "dataset-fashion-mnist" -- "$prog" --data "$dir/none" --epochs 1

good
size=$(wc -c <"$dir/d/train-images-idx3-ubyte.gz")
head -c $((size / 2)) "$dir/d/train-images-idx3-ubyte.gz" >"$dir/t" && mv "$dir/t" "$dir/d/train-images-idx3-ubyte.gz"
expect "truncated .gz" 1 "truncated" "dataset-fashion-mnist" -- "$prog" --data "$dir/d" --epochs 1

good
idx_images "$dir/d/train-images-idx3-ubyte.gz" 300 1
expect "wrong magic" 1 "magic is 0x00000801, expected 0x00000803" "dataset-fashion-mnist" -- \
  "$prog" --data "$dir/d" --epochs 1

good
{ be32 $((0x803)); be32 301; be32 28; be32 28; head -c $((300 * 784)) /dev/zero; } | gzip -c \
  >"$dir/d/t10k-images-idx3-ubyte.gz"
expect "header longer than the data" 1 "promises 235984 bytes" "t10k-images" -- "$prog" --data "$dir/d" --epochs 1

good
idx_labels "$dir/d/train-labels-idx1-ubyte.gz" 299
expect "labels do not match images" 1 "300 images of 28x28 and 299 labels" "train" -- \
  "$prog" --data "$dir/d" --epochs 1

good
idx_labels "$dir/d/t10k-labels-idx1-ubyte.gz" 100 1 12
expect "label out of range" 1 "label 0 is 12" "t10k-labels" -- "$prog" --data "$dir/d" --epochs 1

# Cut inside the gzip trailer: every data byte is there, the CRC is not (zlib does not fail on its own).
good
size=$(wc -c <"$dir/d/t10k-labels-idx1-ubyte.gz")
head -c $((size - 3)) "$dir/d/t10k-labels-idx1-ubyte.gz" >"$dir/t" && mv "$dir/t" "$dir/d/t10k-labels-idx1-ubyte.gz"
expect "gzip trailer cut" 1 "t10k-labels-idx1-ubyte.gz: the compressed data ends before its gzip trailer" \
  "dataset-fashion-mnist" -- "$prog" --data "$dir/d" --epochs 1

good
printf 'not gzip at all' >"$dir/d/train-labels-idx1-ubyte.gz"
expect "not an IDX file" 1 "train-labels" "dataset-fashion-mnist" -- "$prog" --data "$dir/d" --epochs 1

expect "clai train: missing data" 1 "clai train" "dataset-fashion-mnist" -- "$tool" train --data "$dir/none"
expect "unknown model" 2 "unknown model 'resnet'" "mlp, cnn" -- "$prog" --model resnet
expect "bad option value" 2 "--batch wants an integer" "not 'x'" -- "$prog" --batch x

good
n=$((n + 1))
if "$prog" --data "$dir/d" $limit $tests --epochs $epochs2 --batch 64 --json >"$dir/out" 2>"$dir/err" &&
   grep -q "\"test_acc\": $acc" "$dir/out"; then
  echo "ok $n - a well-formed synthetic set trains (all test labels but the first are one class)"
else
  echo "not ok $n - a well-formed synthetic set: exit or output wrong"
  sed 's/^/# /' "$dir/err" "$dir/out"
  fails=$((fails + 1))
fi
n=$((n + 1))
if [ "$small" -eq 1 ]; then
  echo "ok $n - the CNN on the synthetic set # SKIP small mode: a step of the CNN (3.3 million parameters) needs a faster device"
elif "$prog" --data "$dir/d" --model cnn --epochs 1 --batch 64 --json >"$dir/out" 2>"$dir/err" &&
   grep -q '"test_acc": 0.9900' "$dir/out"; then
  echo "ok $n - the CNN trains on the synthetic set too (a short last batch, 100 test images)"
else
  echo "not ok $n - the CNN on the synthetic set: exit or output wrong"
  sed 's/^/# /' "$dir/err" "$dir/out"
  fails=$((fails + 1))
fi
# Forged checkpoints (thousands more, in-process, in tests/test-fmnist-files): 5 steps of 64 per epoch.
good
[ "${CLAI_TEST_OCLGRIND:-0}" = 1 ] || # under Oclgrind the resume_bad tests skip (expect)
  "$prog" --data "$dir/d" $limit $tests --epochs 1 --batch 64 --checkpoint "$dir/good.ckpt" >"$dir/out" 2>"$dir/err" ||
  sed 's/^/# /' "$dir/err"
resume_bad() { # NAME FIELD VALUE WORD -- PROGRAM...: forge FIELD, resume, expect exit 1 and WORD on stderr
  name=$1 field=$2 value=$3 word=$4
  shift 5
  if [ "${CLAI_TEST_OCLGRIND:-0}" = 1 ]; then
    expect "$name" 1 "" "" -- true
  elif "$forge" forge "$dir/good.ckpt" "$dir/bad.ckpt" "$field" "$value"; then
    expect "$name" 1 "$word" "bad.ckpt" -- "$@" --data "$dir/d" $limit --epochs 3 --batch 64 --checkpoint "$dir/bad.ckpt" \
      --resume
  else
    n=$((n + 1)); echo "not ok $n - $name: could not forge the checkpoint"; fails=$((fails + 1))
  fi
}
resume_bad "checkpoint epoch 2^63-1" epoch 9223372036854775807 "the epoch field is 9223372036854775807" -- "$prog"
resume_bad "checkpoint epoch -5" epoch -5 "the epoch field is -5" -- "$prog"
resume_bad "clai train: checkpoint step off by one" step 6 "the step field is 6" -- "$tool" train
resume_bad "checkpoint shape" dim0 -1 "'fc1.weight': dimension 0 of its shape is -1" -- "$prog"
[ "$fails" -eq 0 ]
