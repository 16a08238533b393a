/* core.cl - the program `core`: this comment, then cl/elementwise.cl, layout.cl, loss.cl, backward.cl,
 * optim.cl and random.cl (after cl/common.cl and cl/philox.cl), built as one OpenCL program
 * (lib/program.c, CLAI__CORE_FILES). They are the small op families most applications use together, and
 * POCL pays ~40 ms for every program build even when its own cache holds the program (it preprocesses the
 * source with its OpenCL headers to find the entry), ~0.14 s more on a cold start: a training step used five
 * of them. Their helper functions and macros share one namespace, so each name is defined once, in
 * cl/common.cl when two of them need it. */
