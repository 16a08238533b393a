/* generate.h - `clai generate` and `clai bench llm` (and examples/llama/llama-generate): text generation with a
 * GGUF Llama model on libclai, and its throughput beside llama.cpp's. */
#ifndef LLM_GENERATE_H
#define LLM_GENERATE_H

#include <stddef.h>

/* argv[0] is the command name; returns the process exit status. */
int llm_generate_main(int argc, char **argv);
int llm_bench_main(int argc, char **argv);

#endif
