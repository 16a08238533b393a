/* fashion-mnist - trains a classifier on Fashion-MNIST with libclai (see train.c; `clai train` is the same). */
#include "train.h"

int main(int argc, char **argv) { return fmnist_train_main("fashion-mnist", argc - 1, argv + 1); }
