/* CRC-32 (IEEE 802.3, reflected, as zlib/PNG). The core has no dependencies, so it carries its own. */
#ifndef LINF_CRC32_H
#define LINF_CRC32_H
#include <stddef.h>
#include <stdint.h>

uint32_t linf_crc32(const uint8_t *data, size_t size);

#endif
