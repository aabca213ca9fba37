/* test_codec.c: the one hex encoder and digest helper that SigV4, the SQS MD5 check, the
 * command journal's file names and the configuration digest share. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "codec.h"

static void test_hex_encode(void **state) {
        (void) state;
        static const unsigned char bytes[] = { 0x00, 0x0f, 0xa5, 0xff };
        char hex[2 * sizeof bytes + 1];
        codec_hex_encode(bytes, sizeof bytes, hex);
        assert_string_equal(hex, "000fa5ff");
        codec_hex_encode(bytes, 0, hex);
        assert_string_equal(hex, "");
}

/* FIPS 180-2 and RFC 1321 test vectors. */
static void test_digest_hex_known_answers(void **state) {
        (void) state;
        char sha256[65], md5[33];
        assert_int_equal(codec_digest_hex(EVP_sha256(), "abc", 3, sha256, sizeof sha256), 0);
        assert_string_equal(sha256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_int_equal(codec_digest_hex(EVP_md5(), "", 0, md5, sizeof md5), 0);
        assert_string_equal(md5, "d41d8cd98f00b204e9800998ecf8427e");
}

static void test_digest_hex_too_small_leaves_ret(void **state) {
        (void) state;
        char md5[32];
        memset(md5, 'x', sizeof md5);
        assert_int_equal(codec_digest_hex(EVP_md5(), "", 0, md5, sizeof md5), -ENOBUFS);
        for (size_t i = 0; i < sizeof md5; i++)
                assert_int_equal(md5[i], 'x');
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_hex_encode),
                cmocka_unit_test(test_digest_hex_known_answers),
                cmocka_unit_test(test_digest_hex_too_small_leaves_ret),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
