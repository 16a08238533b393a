/* mnist.h - reading Fashion-MNIST (or MNIST) from its gzip'd IDX files. */
#ifndef CLAI_EXAMPLE_MNIST_H
#define CLAI_EXAMPLE_MNIST_H

#include <stddef.h>
#include <stdint.h>

/* Where Debian's dataset-fashion-mnist package puts the files. */
#define MNIST_DEFAULT_DIR "/usr/share/datasets/fashion-mnist"

typedef struct mnist_set {
  int64_t n;        /* images */
  int rows, cols;   /* 28 x 28 */
  uint8_t *images;  /* n * rows * cols pixels, row-major */
  uint8_t *labels;  /* n labels, each 0..9 */
} mnist_set;

/* Reads `prefix`-images-idx3-ubyte.gz and `prefix`-labels-idx1-ubyte.gz from dir ("train" or "t10k").
 * Every header field and length is checked: on any problem returns -1 with a message in err (naming the
 * file, what was wrong, and the Debian package to install) and leaves *set empty. */
int mnist_load(const char *dir, const char *prefix, mnist_set *set, char *err, size_t errsize);
void mnist_free(mnist_set *set);

/* The number of images `prefix`-images-idx3-ubyte.gz promises, from its header alone (checked as
 * mnist_load checks it): 0, or -1 with a message in err. */
int mnist_count(const char *dir, const char *prefix, int64_t *n, char *err, size_t errsize);

#endif
