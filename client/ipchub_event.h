/*
 * ipchub_event.h - drive an ipchub_async handle (ipchub.h) from a
 * libevent event_base. Library: libipchub-event (`pkg-config
 * ipchub-event`), which links libipchub and libevent_core.
 *
 *   ipchub_async *a;
 *   ipchub_async_new(&opts, &callbacks, app, &a);
 *   ipchub_async_attach(a, base);
 *   event_base_dispatch(base);       // callbacks run from the loop
 *   ...
 *   ipchub_async_free(a);            // also removes its events
 *
 * The handle then owns two events on base (socket readiness, timer) and
 * re-creates them when it reconnects on a new socket. The base must
 * outlive the handle and run in the handle's owner thread.
 */
#ifndef IPCHUB_EVENT_H
#define IPCHUB_EVENT_H

#include "ipchub.h"

#ifdef __cplusplus
extern "C" {
#endif

struct event_base;

/* Attach a (once) to base. Uses the handle's watch
 * (ipchub_async_set_watch), which must not be replaced afterwards.
 * Returns IPCHUB_OK, IPCHUB_E_INVALID, IPCHUB_E_NOMEM,
 * IPCHUB_E_WRONG_THREAD. */
int ipchub_async_attach(ipchub_async *a, struct event_base *base);

#ifdef __cplusplus
}
#endif

#endif
