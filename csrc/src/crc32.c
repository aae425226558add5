#include "crc32.h"

/* Bytewise table CRC. The table is built on the stack per call (about 2K operations, nothing next to
 * an image) so that the core keeps no global or static mutable state and stays thread-safe. */
static uint32_t crc_table_entry(uint32_t index)
{
    uint32_t c = index;
    for (int k = 0; k < 8; k++)
        c = (c & 1u) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    return c;
}

uint32_t linf_crc32(const uint8_t *data, size_t size)
{
    uint32_t table[256];
    for (uint32_t i = 0; i < 256; i++)
        table[i] = crc_table_entry(i);
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < size; i++)
        crc = table[(crc ^ data[i]) & 0xFFu] ^ (crc >> 8);
    return crc ^ 0xFFFFFFFFu;
}
