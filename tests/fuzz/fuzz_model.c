/* fuzz_model: nn/model (safetensors model files: JSON header, metadata with the spec, F32 tensors). Invariants: a
 * load either fails with a message naming the file or gives a net whose spec came from the metadata; saving that
 * net and loading the saved file gives the same parameters and buffers bit for bit; nn_model_meta reads the same
 * spec text the loader used. */
#include <string.h>

#include "fuzz_util.h"
#include "nn/model.h"
#include "nn/spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[512], out[512];
    fz_file(path, sizeof path, "in.safetensors", data, size);
    fz_path(out, sizeof out, "out.safetensors");
    dg_err err = {{0}};
    char *spec = NULL;
    if (nn_model_meta(path, "spec", &spec, &err) != 0)
        FZ_CHECK(strstr(err.msg, path) == err.msg, "message does not name the file: %s", err.msg);
    nn_net *net = NULL;
    if (nn_model_load(path, 1, &net, &err) != 0) {
        FZ_CHECK(strstr(err.msg, path) == err.msg, "message does not name the file: %s", err.msg);
        FZ_CHECK(net == NULL, "a failed load returned a net");
        free(spec);
        return 0;
    }
    FZ_CHECK(spec && nn_net_spec(net)->text && strcmp(spec, nn_net_spec(net)->text) == 0,
             "the net's spec is not the metadata's");
    FZ_CHECK(nn_model_save(out, net, NULL, &err) == 0, "save failed: %s", err.msg);
    nn_net *again = NULL;
    FZ_CHECK(nn_model_load(out, 1, &again, &err) == 0, "the saved model does not load: %s", err.msg);
    size_t np = nn_net_param_count(net), nb = nn_net_buffer_count(net);
    FZ_CHECK(nn_net_param_count(again) == np && nn_net_buffer_count(again) == nb, "counts differ");
    FZ_CHECK(np == 0 || memcmp(nn_net_params(net), nn_net_params(again), np * sizeof(float)) == 0, "params differ");
    FZ_CHECK(nb == 0 || memcmp(nn_net_buffers(net), nn_net_buffers(again), nb * sizeof(float)) == 0,
             "buffers differ");
    nn_net_free(again);
    nn_net_free(net);
    free(spec);
    return 0;
}
