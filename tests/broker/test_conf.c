/* test_conf.c - defaults, range validation and option parsing. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "conf.h"

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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults_valid),
		cmocka_unit_test(test_ranges),
		cmocka_unit_test(test_parse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
