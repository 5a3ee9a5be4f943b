/*
 * topic.h - the subscription trie: which patterns match a topic.
 *
 * Model: topics are names (name.h grammar) read as dot-separated
 * segments, "sensors.kitchen.temp". A pattern is 1..IPCHUB_MAX_NAME bytes
 * of segments where a segment may also be "*" (exactly one segment) or,
 * as the last segment only, ">" (one or more remaining segments):
 * "sensors.*.temp", "sensors.>". A struct topic_tree stores patterns as a
 * trie with one node per distinct pattern prefix; a node's literal
 * children are found through one tree-wide htab keyed by (parent, segment)
 * and its "*" child through a pointer, so matching a topic of k segments
 * costs O(k x the wildcard branches taken), independent of how many
 * patterns are stored.
 *
 * Ownership: the tree owns its nodes; entries are embedded in the
 * caller's objects (intrusive) and borrowed: topic_add links one, and the
 * caller must topic_remove it before freeing it. Empty nodes are pruned
 * at removal, so memory follows the live patterns. No I/O, no broker
 * types: this is a pure data structure, tested on its own.
 *
 * Errors: topic_init/topic_add return 0 or -ENOMEM (tree unchanged).
 */
#ifndef IPCHUB_BROKER_TOPIC_H
#define IPCHUB_BROKER_TOPIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "htab.h"

struct topic_node;

/* A stored pattern; embed in the subscription that owns it. */
struct topic_entry {
	struct topic_node *node;     /* set by topic_add */
	bool rest;                   /* the pattern ends in ">" */
	TAILQ_ENTRY(topic_entry) link;
};

TAILQ_HEAD(topic_entry_tq, topic_entry);

struct topic_node {
	struct topic_node *parent;   /* NULL for the root */
	struct topic_node *star;     /* "*" child, or NULL */
	uint64_t hash;               /* edge hash in the tree's htab */
	uint32_t nchildren;          /* literal children + star */
	struct topic_entry_tq exact; /* patterns ending at this node */
	struct topic_entry_tq rest;  /* patterns "<this prefix>.>" */
	TAILQ_ENTRY(topic_node) all; /* the tree's list of non-root nodes */
	uint16_t seg_len;
	char seg[];                  /* the segment, not NUL-terminated */
};

struct topic_tree {
	struct htab edges;           /* (parent, segment) -> child node */
	struct topic_node *root;     /* owned */
	TAILQ_HEAD(, topic_node) all; /* every non-root node, owned */
	size_t nentries;
	size_t nnodes;
};

typedef void (*topic_match_fn)(struct topic_entry *e, void *arg);

int topic_init(struct topic_tree *t);
/* Free every node. Entries still linked are simply forgotten. Accepts a
 * zeroed tree. */
void topic_fini(struct topic_tree *t);

/* WIRE_E_OK if s[0..len) is a valid topic (a name), else WIRE_E_BAD_NAME. */
int topic_check(const char *s, size_t len);
/* WIRE_E_OK if s[0..len) is a valid pattern, else WIRE_E_BAD_NAME. */
int topic_pattern_check(const char *s, size_t len);

/* Reference matcher: whether a valid pattern matches a valid topic. Used
 * by the monitor's topic filter and as the trie's oracle in tests. */
bool topic_pattern_match(const char *pat, size_t plen, const char *topic,
			 size_t tlen);

/* Store e under a valid pattern. Returns 0 or -ENOMEM. */
int topic_add(struct topic_tree *t, struct topic_entry *e, const char *pat,
	      size_t len);
/* Unlink e (stored by topic_add) and prune nodes left empty. */
void topic_remove(struct topic_tree *t, struct topic_entry *e);

/* Call fn for every entry whose pattern matches the valid topic, once per
 * entry, in no particular order. fn must not add or remove entries.
 * Returns the number of calls. */
size_t topic_match(const struct topic_tree *t, const char *topic, size_t len,
		   topic_match_fn fn, void *arg);

#endif
