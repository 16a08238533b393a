/* generate.h - `clai generate` and `clai bench llm` (and examples/llama/llama-generate): text generation with a
 * GGUF Llama model on libclai, and its throughput beside llama.cpp's. */
#ifndef LLM_GENERATE_H
#define LLM_GENERATE_H

#include <stddef.h>

/* argv[0] is the command name; returns the process exit status. */
int llm_generate_main(int argc, char **argv);

/* The model file used when --model is not given: $CLAI_LLM_MODEL, else
 * $XDG_DATA_HOME/clai/models/SmolLM2-135M-Instruct.Q4_1.gguf (XDG_DATA_HOME defaults to ~/.local/share), where
 * build-aux/get-model puts it. Writes the path into buf. */
void llm_default_model(char *buf, size_t cap);

#endif
