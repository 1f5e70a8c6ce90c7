/* check_knobs.c: placeholder, filled in below. */
#include <check.h>
#include <stdlib.h>
#include <pumped.h>
START_TEST(test_placeholder) { ck_assert_int_eq(0, 0); }
END_TEST
int main(void) {
	Suite *s = suite_create("knobs");
	TCase *tc = tcase_create("all");
	tcase_add_test(tc, test_placeholder);
	suite_add_tcase(s, tc);
	SRunner *r = srunner_create(s);
	srunner_run_all(r, CK_NORMAL);
	int f = srunner_ntests_failed(r);
	srunner_free(r);
	return f == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
