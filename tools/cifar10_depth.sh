#!/bin/sh
# The CIFAR-10 depth table in docs/cifar10.md: MLPs with 1-4 hidden layers of 256 ReLU units (2-5 Linear layers),
# built from the library's modules and trained with autograd on the exercise's split (49,000 train / 1,000 validation,
# first 1,000 test images), mean image subtracted (pixels scaled to [0, 1] first). Kept to 6 epochs per run: the
# build machine has 2 shared cores.  Usage: tools/cifar10_depth.sh [OUTDIR] [extra train options...]
set -e
out=${1:-runs/cifar10-depth}; [ $# -gt 0 ] && shift
backprop=${BACKPROP:-"dotnet run --project src/Backprop.Cli -c Release --"}
for hidden in 256 256,256 256,256,256 256,256,256,256; do
  $backprop train --dataset cifar10 --normalize mean-image --val-size 1000 --test-size 1000 --hidden $hidden \
    --optimizer sgd --momentum 0.9 --lr 0.01 --schedule cosine --batch-size 128 --epochs 6 --seed 0 \
    --out "$out/hidden-$hidden" "$@"
done
