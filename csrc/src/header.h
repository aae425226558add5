/* The 36-byte container header (little-endian):
 *   0  magic "LINF"        4  format version (u8)   5 coding mode (u8)   6 bit depth (u8)  7 reserved 0
 *   8  width (u32)        12  height (u32)         16 channels (u16)    18 tau (u16)
 *  20  payload bytes (u64) 28 payload CRC-32 (u32)  32 CRC-32 of bytes 0..31 (u32)
 */
#ifndef LINF_HEADER_H
#define LINF_HEADER_H

#include "linf_codec.h"

#define LINF_MODE_PREDICTIVE 0u
#define LINF_MODE_RAW 1u

/* Checks geometry, depth and tau of a description (shared by encoder and header parser). */
linf_status linf_check_desc(const linf_image_desc *desc);

void linf_write_header(uint8_t *dst, const linf_header *header);
linf_status linf_parse_header(const uint8_t *src, size_t src_bytes, linf_header *header);

#endif
