/*
 * name.h - the grammar of ipchub names.
 *
 * A name is 1..IPCHUB_MAX_NAME bytes of [A-Za-z0-9._-], not starting or
 * ending with '.', without "..". Names equal to "ipchub" or starting with
 * "ipchub." are reserved for the broker's own services: they can be
 * addressed but not registered. Names are case-sensitive. A remote name
 * `local@hub` names `local` on another hub of a federation; only bridge
 * connections register them.
 */
#ifndef IPCHUB_PROTO_NAME_H
#define IPCHUB_PROTO_NAME_H

#include <stdbool.h>
#include <stddef.h>

/* WIRE_E_OK if s[0..len) is a well-formed name, else WIRE_E_BAD_NAME.
 * s need not be NUL-terminated; a NUL byte inside is a bad name. */
int name_check(const char *s, size_t len);

/* An address: a name, or a remote name `local@hub` (PROTOCOL.md 6.9):
 * exactly one '@', a well-formed name before it and 1..IPCHUB_MAX_HUB
 * bytes of [A-Za-z0-9_-] after it, 255 bytes in all. WIRE_E_OK or
 * WIRE_E_BAD_NAME. Destinations, registered and watched names are
 * addresses; topics are names. */
int name_check_addr(const char *s, size_t len);

/* A hub name alone (the part after '@'): WIRE_E_OK or WIRE_E_BAD_NAME. */
int name_check_hub(const char *s, size_t len);

/* Whether a well-formed address is a remote name (has an '@'). */
bool name_is_remote(const char *s, size_t len);

/* Whether a well-formed name is reserved for the broker. */
bool name_is_reserved(const char *s, size_t len);

#endif
