/* The container header (little-endian). Fixed part, 36 bytes:
 *   0  magic "LINF"        4  format version (u8)   5 coding mode (u8)   6 bit depth (u8)
 *   7  flags (u8; format 2: 0; formats 3-4: bit 0 signed samples, bit 1 striped, others 0)
 *   8  width (u32)        12  height (u32)         16 channels (u16)    18 tau (u16)
 *  20  payload bytes (u64) 28 payload CRC-32 (u32)  32 CRC-32 of bytes 0..31 (u32)
 * Striped streams (format 3, flag bit 1) continue with the stripe table, LINF_STRIPE_TABLE_BYTES:
 *  36  stripe height (u32)  40 stripe count (u32) = ceil(height / stripe height)
 *  44  per stripe, 16 bytes: coded bytes (u64), CRC-32 of them (u32), mode (u8: 0 predictive,
 *      1 raw, 2 palette, 3 predictive moved-only, 4 predictive with formats 2-3's interband
 *      model (2-4: format 4)), 3 zero bytes
 * and the header's payload CRC-32 then covers the stripe table (each stripe has its own CRC); the
 * payload is the stripes' bytes in order, their sum being the header's payload bytes. Coding mode
 * is 0 for striped streams. A stream is exactly header_bytes + payload_bytes long.
 * Format 4 has format 3's container; only the multichannel model changed (issue 17: channels with
 * a reference are predicted in the channel-difference domain, RGB codes green first), so gray
 * images are still written as format 3, byte for byte, and multichannel ones as format 4.
 */
#ifndef LINF_HEADER_H
#define LINF_HEADER_H

#include "linf_codec.h"

#define LINF_MODE_PREDICTIVE 0u
#define LINF_MODE_RAW 1u
#define LINF_MODE_PALETTE 2u /* format 4, tau = 0, 2-4 channels: palette + index image */
#define LINF_MODE_MOVED 3u   /* format 4, 2+ channels: predictive, moved-only candidates */
#define LINF_MODE_INTERBAND3 4u /* format 4, 2+ channels: predictive, formats 2-3's interband model */
#define LINF_FLAG_SIGNED 1u
#define LINF_FLAG_STRIPED 2u

/* One stripe's entry of the stripe table. */
typedef struct linf_stripe_entry {
    uint64_t bytes;
    uint32_t crc32;
    uint32_t mode;
} linf_stripe_entry;

/* Checks geometry, depth, tau and signedness of a description (shared by encoder and parser). */
linf_status linf_check_desc(const linf_image_desc *desc);

/* Rows of stripe i (the last stripe may be shorter). */
uint32_t linf_stripe_rows(uint32_t height, uint32_t stripe_height, uint32_t i);

/* Stripe count for a stripe height: 1 when not striped (0 or >= height). */
uint32_t linf_stripe_count(uint32_t height, uint32_t stripe_height);

/* Writes the fixed 36 bytes (h->payload_crc32 must already be the table's CRC when striped). */
void linf_write_header(uint8_t *dst, const linf_header *header);

/* Writes the stripe table (LINF_STRIPE_TABLE_BYTES(count) bytes) and returns its CRC-32. */
uint32_t linf_write_stripe_table(uint8_t *dst, uint32_t stripe_height, uint32_t count,
                                 const linf_stripe_entry *entries);

/* Entry i of a stripe table that linf_parse_header has validated. */
linf_stripe_entry linf_read_stripe_entry(const uint8_t *table, uint32_t i);

linf_status linf_parse_header(const uint8_t *src, size_t src_bytes, linf_header *header);

#endif
