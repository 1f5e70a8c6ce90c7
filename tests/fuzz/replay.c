/*
 * replay.c: feeds files to LLVMFuzzerTestOneInput without libFuzzer.
 *
 * `make check` links it with fuzz_api.c and the test build of the library
 * and replays every file of the seed corpus (tests/fuzz/corpus/, or the
 * directories and files named on the command line), so the invariants the
 * fuzzer checks are checked on every build, sanitizers included.  A broken
 * invariant aborts inside fuzz_api.c; the name of the input is printed
 * first so the failure names it.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#ifndef PF_FUZZ_CORPUS
#define PF_FUZZ_CORPUS "tests/fuzz/corpus"
#endif

static int
replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		perror(path);
		return -1;
	}
	uint8_t *buf = NULL;
	size_t n = 0, cap = 0;
	for (;;) {
		if (n == cap) {
			cap = cap ? cap * 2 : 4096;
			uint8_t *nb = realloc(buf, cap);
			if (nb == NULL) {
				free(buf);
				fclose(f);
				return -1;
			}
			buf = nb;
		}
		size_t got = fread(buf + n, 1, cap - n, f);
		if (got == 0)
			break;
		n += got;
	}
	fclose(f);
	fprintf(stderr, "replay: %s (%zu bytes)\n", path, n);
	LLVMFuzzerTestOneInput(buf, n);
	free(buf);
	return 0;
}

static int
cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Replays every regular file of dir in name order; returns how many. */
static long
replay_dir(const char *dir)
{
	DIR *d = opendir(dir);
	if (d == NULL) {
		perror(dir);
		return -1;
	}
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			char **nn = realloc(names, cap * sizeof(*names));
			if (nn == NULL)
				break;
			names = nn;
		}
		size_t len = strlen(dir) + strlen(de->d_name) + 2;
		names[n] = malloc(len);
		if (names[n] == NULL)
			break;
		snprintf(names[n], len, "%s/%s", dir, de->d_name);
		n++;
	}
	closedir(d);
	if (n > 0)
		qsort(names, n, sizeof(*names), cmp_names);
	long done = 0;
	for (size_t i = 0; i < n; i++) {
		struct stat st;
		if (stat(names[i], &st) == 0 && S_ISREG(st.st_mode) &&
		    replay_file(names[i]) == 0)
			done++;
		free(names[i]);
	}
	free(names);
	return done;
}

int
main(int argc, char **argv)
{
	long total = 0;
	if (argc < 2) {
		total = replay_dir(PF_FUZZ_CORPUS);
		if (total <= 0) {
			fprintf(stderr, "replay: no inputs in %s\n",
			    PF_FUZZ_CORPUS);
			return EXIT_FAILURE;
		}
	}
	for (int i = 1; i < argc; i++) {
		struct stat st;
		if (stat(argv[i], &st) != 0) {
			perror(argv[i]);
			return EXIT_FAILURE;
		}
		long n = S_ISDIR(st.st_mode) ? replay_dir(argv[i]) :
		    replay_file(argv[i]) == 0 ? 1 : -1;
		if (n < 0)
			return EXIT_FAILURE;
		total += n;
	}
	fprintf(stderr, "replay: %ld inputs, no invariant broken\n", total);
	return EXIT_SUCCESS;
}
