/* train.h - the Fashion-MNIST trainer shared by examples/fashion-mnist and `clai train`. */
#ifndef CLAI_EXAMPLE_TRAIN_H
#define CLAI_EXAMPLE_TRAIN_H

/* Parses the options in argv[0..argc) (no program name), trains and reports. `prog` names the command in
 * messages ("fashion-mnist", "clai train"). Returns the process exit status: 0 on success, 1 on a failure
 * (missing data, a device error, a bad checkpoint), 2 on a usage error. */
int fmnist_train_main(const char *prog, int argc, char **argv);

#endif
