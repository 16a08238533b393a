/* main.c - examples/llama/llama-generate: the Llama runner as a program of its own (the same code as
 * `clai generate`; see generate.c). */
#include "generate.h"

int main(int argc, char **argv) { return llm_generate_main(argc, argv); }
