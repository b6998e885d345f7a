/* nn/model: trained models on disk, as safetensors (https://github.com/huggingface/safetensors).
 *
 * A model file holds every tensor of nn_net (F32, little-endian, names from nn_tensor) and a "__metadata__"
 * object with: "format": "digits-model", "version", "spec" (the spec text, so the file describes itself),
 * "spec_name", "hyper" (JSON), "seed", "val_accuracy", "val_split", "epochs", and any extra keys the caller adds.
 * PyTorch (safetensors.torch.load_file) and NumPy can read it without our code.
 */
#ifndef NN_MODEL_H
#define NN_MODEL_H

#include "nn/net.h"
#include "core/dg_err.h"

/* extra_meta: a JSON object text whose string values are added to __metadata__ (NULL for none).
 * Written atomically. */
int nn_model_save(const char *path, nn_net *net, const char *extra_meta, dg_err *err);

/* Load a model: parses the spec from its metadata, builds the net for max_batch, loads weights and buffers.
 * A file that is not a digits model, truncated, or whose tensors do not match the spec is an error. */
int nn_model_load(const char *path, int max_batch, nn_net **net, dg_err *err);

/* The value of a metadata key (malloc'd string; NULL if absent). */
int nn_model_meta(const char *path, const char *key, char **value, dg_err *err);

#endif
