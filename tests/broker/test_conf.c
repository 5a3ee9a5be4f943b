/* test_conf.c - defaults, range validation and option parsing. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "conf.h"
#include "log.h"

static void test_defaults_valid(void **state)
{
	struct broker_conf c;
	char err[256];

	(void)state;
	conf_defaults(&c);
	assert_int_equal(conf_validate(&c, err, sizeof(err)), 0);
	assert_int_equal(c.max_frame, IPCHUB_MAX_FRAME_DEFAULT);
	assert_int_equal(c.queue_hwm, IPCHUB_QUEUE_HWM_DEFAULT);
	assert_int_equal(c.max_names, IPCHUB_MAX_NAMES_DEFAULT);
	assert_int_equal(c.max_pending, IPCHUB_MAX_PENDING_DEFAULT);
	assert_int_equal(c.max_conns, IPCHUB_MAX_CONNS_DEFAULT);
	assert_int_equal(c.handshake_timeout_ms,
			 IPCHUB_HANDSHAKE_TIMEOUT_MS_DEFAULT);
	assert_int_equal(c.frame_timeout_ms, IPCHUB_FRAME_TIMEOUT_MS_DEFAULT);
	assert_int_equal(c.socket_mode, 0600);
	assert_null(c.socket_path);
}

static void test_ranges(void **state)
{
	struct broker_conf c;
	char err[256];

	(void)state;
	conf_defaults(&c);
	c.max_frame = IPCHUB_MAX_FRAME_MIN - 1;
	assert_int_equal(conf_validate(&c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "--max-frame"));
	conf_defaults(&c);
	c.max_frame = IPCHUB_MAX_FRAME_MAX + 1;
	assert_int_equal(conf_validate(&c, err, sizeof(err)), -EINVAL);
	conf_defaults(&c);
	c.queue_hwm = IPCHUB_QUEUE_HWM_MIN - 1;
	assert_int_equal(conf_validate(&c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "--queue-hwm"));
	conf_defaults(&c);
	c.max_names = 0;
	assert_int_equal(conf_validate(&c, err, sizeof(err)), -EINVAL);
	conf_defaults(&c);
	c.max_pending = IPCHUB_MAX_PENDING_MAX + 1;
	assert_int_equal(conf_validate(&c, err, sizeof(err)), -EINVAL);
	conf_defaults(&c);
	c.max_conns = 0;
	assert_int_equal(conf_validate(&c, err, sizeof(err)), -EINVAL);
	conf_defaults(&c);
	c.handshake_timeout_ms = CONF_HANDSHAKE_TIMEOUT_MIN_MS - 1;
	assert_int_equal(conf_validate(&c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "--handshake-timeout"));
	conf_defaults(&c);
	c.frame_timeout_ms = CONF_FRAME_TIMEOUT_MIN_MS - 1;
	assert_int_equal(conf_validate(&c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "--frame-timeout"));
	conf_defaults(&c);
	c.frame_timeout_ms = CONF_FRAME_TIMEOUT_MAX_MS + 1;
	assert_int_equal(conf_validate(&c, err, sizeof(err)), -EINVAL);
	conf_defaults(&c);
	c.socket_mode = 01000;
	assert_int_equal(conf_validate(&c, err, sizeof(err)), -EINVAL);
	conf_defaults(&c);
	c.socket_path = "";
	assert_int_equal(conf_validate(&c, err, sizeof(err)), -EINVAL);
	conf_defaults(&c);
	c.max_frame = IPCHUB_MAX_FRAME_MIN;
	c.queue_hwm = IPCHUB_QUEUE_HWM_MAX;
	c.max_names = 1;
	assert_int_equal(conf_validate(&c, err, sizeof(err)), 0);
}

static void test_parse(void **state)
{
	uint32_t v = 42;
	unsigned m = 1;

	(void)state;
	assert_int_equal(conf_parse_size("65536", &v), 0);
	assert_int_equal(v, 65536);
	assert_int_equal(conf_parse_size("64k", &v), 0);
	assert_int_equal(v, 65536);
	assert_int_equal(conf_parse_size("16M", &v), 0);
	assert_int_equal(v, 16u << 20);
	assert_int_equal(conf_parse_size("16MiB", &v), 0);
	assert_int_equal(conf_parse_size("1GB", &v), 0);
	assert_int_equal(v, 1u << 30);
	v = 42;
	assert_int_equal(conf_parse_size("4G", &v), -ERANGE);
	assert_int_equal(conf_parse_size("99999999999999999999999", &v), -ERANGE);
	assert_int_equal(conf_parse_size("", &v), -EINVAL);
	assert_int_equal(conf_parse_size("-1", &v), -EINVAL);
	assert_int_equal(conf_parse_size(" 1", &v), -EINVAL);
	assert_int_equal(conf_parse_size("1x", &v), -EINVAL);
	assert_int_equal(conf_parse_size("1Mx", &v), -EINVAL);
	assert_int_equal(v, 42); /* untouched on failure */
	assert_int_equal(conf_parse_u32("4294967295", &v), 0);
	assert_int_equal(v, UINT32_MAX);
	assert_int_equal(conf_parse_u32("4294967296", &v), -ERANGE);
	assert_int_equal(conf_parse_u32("1k", &v), -EINVAL);
	assert_int_equal(conf_parse_mode("0660", &m), 0);
	assert_int_equal(m, 0660);
	assert_int_equal(conf_parse_mode("777", &m), 0);
	assert_int_equal(m, 0777);
	assert_int_equal(conf_parse_mode("0800", &m), -EINVAL);
	assert_int_equal(conf_parse_mode("1777", &m), -ERANGE);
	assert_int_equal(conf_parse_mode("", &m), -EINVAL);
}

/* The option table: keys, generic set/format/compare/assign, ownership. */
static void test_table(void **state)
{
	struct broker_conf a, b;
	const struct conf_opt *o;
	char err[256], buf[64];

	(void)state;
	/* Every row's key maps back to it, and flags are not keys. */
	for (size_t i = 0; i < conf_nopts; i++) {
		conf_key(&conf_opts[i], buf, sizeof(buf));
		assert_ptr_equal(conf_find_key(buf), &conf_opts[i]);
		assert_null(strchr(buf, '-'));
	}
	assert_null(conf_find_key("queue-hwm"));
	assert_null(conf_find_key("queue_hw"));
	assert_null(conf_find_key(""));

	conf_defaults(&a);
	o = conf_find_key("queue_hwm");
	assert_non_null(o);
	assert_int_equal(conf_set(&a, o, "8M", err, sizeof(err)), 0);
	assert_int_equal(a.queue_hwm, 8u << 20);
	assert_int_equal(conf_set(&a, o, "8Q", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "8Q"));
	assert_int_equal(a.queue_hwm, 8u << 20); /* untouched on failure */
	conf_format(&a, o, buf, sizeof(buf));
	assert_string_equal(buf, "8388608");

	o = conf_find_key("socket_mode");
	assert_int_equal(conf_set(&a, o, "660", err, sizeof(err)), 0);
	conf_format(&a, o, buf, sizeof(buf));
	assert_string_equal(buf, "0660");

	o = conf_find_key("log_target");
	assert_int_equal(conf_set(&a, o, "journal", err, sizeof(err)), 0);
	assert_int_equal(a.log_target, LOG_TARGET_JOURNAL);
	assert_int_equal(conf_set(&a, o, "file", err, sizeof(err)), -EINVAL);

	/* Strings are owned copies; copy, compare, assign, clear. */
	o = conf_find_key("socket");
	assert_int_equal(conf_set(&a, o, "/tmp/x.sock", err, sizeof(err)), 0);
	assert_int_equal(conf_set(&a, o, "", err, sizeof(err)), -EINVAL);
	assert_string_equal(a.socket_path, "/tmp/x.sock");
	assert_int_equal(conf_copy(&b, &a), 0);
	assert_ptr_not_equal(b.socket_path, a.socket_path);
	for (size_t i = 0; i < conf_nopts; i++)
		assert_false(conf_differs(&a, &b, &conf_opts[i]));
	assert_int_equal(conf_set(&b, o, "/tmp/y.sock", err, sizeof(err)), 0);
	assert_true(conf_differs(&a, &b, o));
	assert_false(conf_differs(&a, &b, conf_find_key("max_names")));
	assert_int_equal(conf_assign(&a, &b, o), 0);
	assert_string_equal(a.socket_path, "/tmp/y.sock");
	assert_false(conf_differs(&a, &b, o));
	conf_clear(&a);
	conf_clear(&b);
	assert_null(a.socket_path);

	/* Bounds come from the table and name key and flag. */
	conf_defaults(&a);
	a.max_pending = 0;
	assert_int_equal(conf_check(&a, conf_find_key("max_pending"), err,
				    sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "max_pending (--max-pending) 0"));
	a.log_level = 7;
	assert_int_equal(conf_validate(&a, err, sizeof(err)), -EINVAL);
}

static void test_parse_bool(void **state)
{
	bool v = false;

	(void)state;
	assert_int_equal(conf_parse_bool("yes", &v), 0);
	assert_true(v);
	assert_int_equal(conf_parse_bool("off", &v), 0);
	assert_false(v);
	assert_int_equal(conf_parse_bool("maybe", &v), -EINVAL);
	assert_false(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults_valid),
		cmocka_unit_test(test_ranges),
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_parse_bool),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
