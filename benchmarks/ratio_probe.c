/* Bits per sample of the C core against JPEG-LS on the lists written by ratio_probe.py.
 *
 *   cc -std=c99 -O2 -ffp-contract=off -Icsrc/include -Icsrc/src benchmarks/ratio_probe.c \
 *      csrc/src/codec.c csrc/src/crc32.c csrc/src/header.c -o ratio_probe
 *   ./ratio_probe LIST TAUS [VERIFY]      e.g. ./ratio_probe out/probe/luma.list 0,1,2,4 1
 *
 * Prints, per tau, the mean over images of linf's and JPEG-LS's bits per sample (whole streams)
 * and their ratio, as codec_bench.py does. VERIFY=1 also decodes every stream and checks
 * |x - y| <= tau (and exits non-zero on any violation). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "linf_codec.h"

#define MAX_TAUS 15

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s LIST TAUS [VERIFY]\n", argv[0]);
        return 2;
    }
    const int verify = argc > 3 ? atoi(argv[3]) : 0;
    int taus[MAX_TAUS], count = 0;
    char *spec = strdup(argv[2]);
    for (char *t = strtok(spec, ","); t && count < MAX_TAUS; t = strtok(NULL, ",")) taus[count++] = atoi(t);
    free(spec);
    FILE *list = fopen(argv[1], "r");
    if (!list) return 2;
    double linf_bps[MAX_TAUS] = {0}, jls_bps[MAX_TAUS] = {0};
    int images[MAX_TAUS] = {0};
    char name[1024];
    long jls[MAX_TAUS];
    while (fscanf(list, "%1023s", name) == 1) {
        for (int i = 0; i < MAX_TAUS; i++)
            if (fscanf(list, "%ld", &jls[i]) != 1) return 3;
        FILE *f = fopen(name, "rb");
        unsigned head[5];
        if (!f || fread(head, 4, 5, f) != 5) return 3;
        const size_t samples = (size_t)head[0] * head[1] * head[2], bytes = samples * head[4];
        void *pixels = malloc(bytes), *decoded = malloc(bytes);
        if (!pixels || !decoded || fread(pixels, 1, bytes, f) != bytes) return 3;
        fclose(f);
        linf_image_desc d = {0};
        d.width = head[0];
        d.height = head[1];
        d.channels = head[2];
        d.bit_depth = head[3];
        const size_t capacity = linf_max_encoded_size(&d);
        uint8_t *stream = malloc(capacity);
        if (!stream) return 3;
        for (int k = 0; k < count; k++) {
            if (taus[k] < 0 || taus[k] >= MAX_TAUS || jls[taus[k]] < 0) continue;
            d.tau = (uint32_t)taus[k];
            size_t written = 0;
            if (linf_encode(&d, pixels, bytes, stream, capacity, &written) != LINF_OK) return 4;
            if (verify) {
                if (linf_decode(stream, written, decoded, bytes, 0) != LINF_OK) return 4;
                for (size_t i = 0; i < samples; i++) {
                    const int a = head[4] == 1 ? ((uint8_t *)pixels)[i] : ((uint16_t *)pixels)[i];
                    const int b = head[4] == 1 ? ((uint8_t *)decoded)[i] : ((uint16_t *)decoded)[i];
                    if (abs(a - b) > taus[k]) {
                        fprintf(stderr, "violation: %s tau %d\n", name, taus[k]);
                        return 5;
                    }
                }
            }
            linf_bps[k] += 8.0 * (double)written / (double)samples;
            jls_bps[k] += 8.0 * (double)jls[taus[k]] / (double)samples;
            images[k]++;
        }
        free(pixels);
        free(decoded);
        free(stream);
    }
    fclose(list);
    for (int k = 0; k < count; k++)
        if (images[k])
            printf("tau %2d images %3d linf %.4f jpegls %.4f ratio %.4f\n", taus[k], images[k],
                   linf_bps[k] / images[k], jls_bps[k] / images[k], linf_bps[k] / jls_bps[k]);
    return 0;
}
