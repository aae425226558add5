/*
 * Writes a seed corpus of small valid streams for fuzz_decode: make_corpus DIR.
 * Covers both coding modes (raw also at depths 5 and 12), 8- and 16-bit storage, 1-4 channels,
 * tau = 0 and tau > 0, and format 3's signed samples and stripes (some of them raw).
 *
 * make_corpus --levelmap DIR writes seeds for fuzz_levelmap instead: the harness's 4 parameter bytes
 * (levels, width, height, region size) followed by a valid level-map stream of that shape, for 1-8
 * levels and constant, region and noise maps (each at most 4096 symbols, so the height byte means the
 * same for any MAX_LEVELMAP_SYMBOLS >= 4096).
 */
#include "linf_codec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int write_file(const char *path, const uint8_t *bytes, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(bytes, 1, n, f) != n || fclose(f) != 0) {
        fprintf(stderr, "cannot write %s\n", path);
        return 1;
    }
    return 0;
}

static int levelmap_seeds(const char *dir)
{
    /* width, height, levels, pattern (0 constant top symbol, 1 8x8 regions, 2 noise), region byte */
    static const uint32_t seeds[][5] = {
        {1, 1, 1, 0, 0},  {1, 1, 8, 2, 0},   {8, 8, 2, 2, 0},   {16, 16, 4, 1, 7}, {37, 53, 5, 1, 7},
        {64, 64, 8, 0, 3}, {64, 64, 3, 1, 7}, {256, 1, 8, 2, 0}, {1, 256, 6, 2, 0}, {256, 16, 2, 1, 15},
        {23, 17, 7, 2, 1},
    };
    uint32_t state = 777;
    for (size_t k = 0; k < sizeof seeds / sizeof seeds[0]; k++) {
        const uint32_t w = seeds[k][0], h = seeds[k][1], levels = seeds[k][2];
        const size_t count = (size_t)w * h, cap = linf_levelmap_max_bytes(w, h);
        uint8_t *map = malloc(count), *file = malloc(4 + cap);
        if (!map || !file) return 1;
        for (size_t i = 0; i < count; i++) {
            state = state * 1103515245u + 12345u;
            const uint32_t x = (uint32_t)(i % w), y = (uint32_t)(i / w);
            const uint32_t v = seeds[k][3] == 0 ? levels - 1u
                               : seeds[k][3] == 1 ? (x / 8u * 7u + y / 8u * 3u) % 5u
                                                 : state >> 16;
            map[i] = (uint8_t)(v % levels);
        }
        file[0] = (uint8_t)(levels - 1u);
        file[1] = (uint8_t)(w - 1u);
        file[2] = (uint8_t)(h - 1u);
        file[3] = (uint8_t)seeds[k][4];
        size_t written = 0;
        const linf_status st = linf_encode_levelmap(map, w, h, levels, file + 4, cap, &written);
        if (st != LINF_OK) {
            fprintf(stderr, "level map seed %zu: %s\n", k, linf_error_message(st));
            return 1;
        }
        char path[4096];
        snprintf(path, sizeof path, "%s/levelmap-%02zu.bin", dir, k);
        if (write_file(path, file, 4 + written)) return 1;
        free(file);
        free(map);
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--levelmap") == 0) return levelmap_seeds(argv[2]);
    if (argc != 2) {
        fprintf(stderr, "usage: %s OUTPUT_DIR\n       %s --levelmap OUTPUT_DIR\n", argv[0], argv[0]);
        return 2;
    }
    /* width, height, channels, bit depth, tau, pattern (0 smooth, 1 noise, 2 constant), signed,
     * stripe height (0: one stripe) */
    static const uint32_t seeds[][8] = {
        {1, 1, 1, 8, 0, 2, 0, 0},   {8, 8, 1, 8, 0, 0, 0, 0},  {16, 9, 3, 8, 0, 0, 0, 0},
        {16, 9, 3, 8, 2, 0, 0, 0},  {12, 12, 4, 8, 0, 1, 0, 0}, {7, 5, 1, 1, 0, 1, 0, 0},
        {10, 6, 1, 5, 3, 0, 0, 0},  {20, 4, 1, 12, 0, 0, 0, 0}, {9, 9, 1, 16, 0, 1, 0, 0},
        {9, 9, 3, 16, 40, 0, 0, 0}, {32, 2, 2, 16, 0, 2, 0, 0}, {3, 30, 1, 8, 127, 1, 0, 0},
        {16, 16, 1, 5, 0, 1, 0, 0}, {12, 12, 1, 12, 0, 1, 0, 0}, /* noise at tau 0: stored raw */
        {16, 12, 1, 8, 1, 0, 0, 4}, {10, 9, 3, 12, 0, 0, 1, 2},  {8, 8, 1, 16, 0, 1, 1, 3},
        {12, 7, 2, 9, 2, 0, 1, 0},  {20, 10, 1, 8, 0, 0, 0, 1},  {6, 6, 1, 6, 0, 1, 1, 5},
    };
    uint32_t state = 12345;
    for (size_t k = 0; k < sizeof seeds / sizeof seeds[0]; k++) {
        const uint32_t *s = seeds[k];
        linf_image_desc d;
        memset(&d, 0, sizeof d);
        d.width = s[0];
        d.height = s[1];
        d.channels = s[2];
        d.bit_depth = s[3];
        d.tau = s[4];
        d.is_signed = s[6];
        linf_options options;
        memset(&options, 0, sizeof options);
        options.stripe_height = s[7];
        const size_t n = (size_t)d.width * d.height * d.channels, pb = linf_pixel_bytes(&d);
        const size_t cap = linf_max_encoded_size_ex(&d, options.stripe_height);
        const uint32_t top = (1u << d.bit_depth) - 1u;
        uint8_t *pixels = malloc(pb), *stream = malloc(cap);
        if (!pixels || !stream) return 1;
        for (size_t i = 0; i < n; i++) {
            state = state * 1103515245u + 12345u;
            uint32_t v = s[5] == 0 ? (uint32_t)(i * 37u / (n + 1u)) * top / 36u
                         : s[5] == 1 ? state >> 8
                                     : top / 3u;
            v &= top;
            if (d.is_signed) v -= (top + 1u) / 2u; /* two's complement of v - 2^(depth-1) */
            if (d.bit_depth <= 8) {
                pixels[i] = (uint8_t)v;
            } else {
                const uint16_t w = (uint16_t)v;
                memcpy(pixels + 2 * i, &w, 2);
            }
        }
        size_t written = 0;
        const linf_status st = linf_encode_ex(&d, pixels, pb, stream, cap, &written, NULL, 0, &options);
        if (st != LINF_OK) {
            fprintf(stderr, "seed %zu: %s\n", k, linf_error_message(st));
            return 1;
        }
        char path[4096];
        snprintf(path, sizeof path, "%s/seed-%02zu.linf", argv[1], k);
        if (write_file(path, stream, written)) return 1;
        free(stream);
        free(pixels);
    }
    return 0;
}
