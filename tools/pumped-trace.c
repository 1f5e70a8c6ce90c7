/*
 * pumped-trace: reads a timeline trace that libpumped wrote (PUMPED_TRACE=
 * FILE, Chrome Trace Event JSON, docs/trace.md) and summarises it: per
 * flow name the executions, their statuses and run and pending times, then
 * the critical path of the longest roots; or, with --svg, draws the
 * timeline; or, with --merge, joins the traces of several processes (the
 * ranks of an MPI job) into one.
 *
 * Usage: pumped-trace [--roots N] [--svg OUT [--width PX] [--depth N]] FILE
 *        pumped-trace --merge OUT FILE...
 *
 * A standalone program: it reads the file format, never the library, so
 * that a trace can be read on a machine without libpumped (and so that
 * the reader checks the format the library writes, not its own idea of
 * it).  Only libc and libm.
 *
 * The file is read into memory once.  The JSON reader is strict (RFC 8259:
 * valid UTF-8, no trailing commas, no leading zeros, no lone surrogates)
 * and recursive with a depth limit; it builds a small tree for one element
 * of traceEvents at a time, takes what it needs into compact records and
 * forgets the tree, so memory is the file plus about a hundred bytes per
 * execution.  Strings without escapes point into the file, never copied.
 *
 * The merge reads every input twice from memory: first to learn each
 * file's clock (otherData.origin_unix_ns, clock_offset_ns), its pids and
 * its X slices, then, with all inputs known good, to write each event
 * again with its ts shifted onto the common clock.  Numbers it does not
 * change are written as the file spelled them, so they round-trip.
 *
 * Exit status: 0 done, 1 the input could not be read or is malformed (or
 * an output could not be written), 2 bad usage.
 */
/* lstat(), to tell a regular OUT (replaced by rename) from a FIFO, a
 * device or a link (written through), under -std=c11. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define PROG "pumped-trace"

#define MAX_NESTING 256       /* JSON arrays and objects inside each other */
#define DEFAULT_ROOTS 10      /* critical paths printed */
#define DEFAULT_WIDTH 1600    /* SVG width in pixels */
#define DEFAULT_DEPTH 8       /* nesting levels drawn per thread */
#define MAX_DEPTH_DRAWN 64
#define MAX_BARS 12000        /* bars drawn one by one, at most */
#define MIN_BAR_PX 0.5        /* narrower ones are merged into marks */
#define MAX_MARKS 10000       /* about, by widening the gap they bridge */
#define TITLE_MAX 60          /* characters of a name in a tooltip */
#define LEGEND_MAX 40         /* flows named in the legend */
#define LABEL_MAX 22          /* characters of a lane's label */
#define LABEL_MAX_PROC 26     /* the same, process name included */
/* |ts|, dur and pending_us beyond this (31 years in microseconds) are
 * refused, so that no difference or sum of them overflows. */
#define MAX_US 1e15

#define NONE ((size_t)-1)
#define NONE32 UINT32_MAX

enum status { ST_OTHER, ST_COMPLETED, ST_FAILED, ST_CANCELLED };

static const char *const status_names[] = {
	"other", "completed", "failed", "cancelled"
};

/* ----------------------------------------------------------- memory */

static void
out_of_memory(void)
{
	fprintf(stderr, PROG ": out of memory\n");
	exit(1);
}

static void *
xmalloc(size_t n)
{
	void *p = malloc(n != 0 ? n : 1);
	if (p == NULL)
		out_of_memory();
	return p;
}

/* Makes room for `need` elements of `size` bytes in p (capacity *cap),
 * doubling so that appends cost O(1) amortised; returns where they are. */
static void *
grow(void *p, size_t *cap, size_t need, size_t size)
{
	if (need <= *cap)
		return p;
	size_t n = *cap != 0 ? *cap : 16;
	while (n < need) {
		if (n > SIZE_MAX / 2 / size)
			out_of_memory();
		n *= 2;
	}
	void *q = realloc(p, n * size);
	if (q == NULL)
		out_of_memory();
	*cap = n;
	return q;
}
#define GROW(arr, cap, need) \
	((arr) = grow((arr), &(cap), (need), sizeof(*(arr))))

/*
 * An arena of chunks that never move, so that pointers into it stay valid
 * while it grows: the reader's decoded strings (reset after each event)
 * and the strings kept for the whole run (never reset).
 */
typedef struct chunk {
	struct chunk *next;
	size_t used, cap;
	char data[];
} chunk;

typedef struct arena {
	chunk *head;
} arena;

#define CHUNK_SIZE 65536

static char *
arena_alloc(arena *a, size_t n)
{
	chunk *c = a->head;
	if (c == NULL || c->cap - c->used < n) {
		size_t cap = n > CHUNK_SIZE ? n : CHUNK_SIZE;
		if (cap > SIZE_MAX - sizeof(chunk))
			out_of_memory();
		c = xmalloc(sizeof(chunk) + cap);
		c->used = 0;
		c->cap = cap;
		c->next = a->head;
		a->head = c;
	}
	char *p = c->data + c->used;
	c->used += n;
	return p;
}

/* Forgets everything but keeps the newest chunk for reuse. */
static void
arena_reset(arena *a)
{
	if (a->head == NULL)
		return;
	chunk *c = a->head->next;
	while (c != NULL) {
		chunk *next = c->next;
		free(c);
		c = next;
	}
	a->head->next = NULL;
	a->head->used = 0;
}

static void
arena_free(arena *a)
{
	while (a->head != NULL) {
		chunk *next = a->head->next;
		free(a->head);
		a->head = next;
	}
}

/* ------------------------------------------------------- the input */

/* The whole file (or stdin for "-"), NUL-terminated so that strtod can
 * never run past the end. */
static char *
read_input(const char *path, size_t *len)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	if (f == NULL) {
		fprintf(stderr, PROG ": %s: %s\n", path, strerror(errno));
		return NULL;
	}
	char *buf = NULL;
	size_t cap = 0, n = 0;
	/* A regular file's size is known: one allocation, one read. */
	if (f != stdin && fseek(f, 0, SEEK_END) == 0) {
		long size = ftell(f);
		if (size > 0 && (unsigned long)size < SIZE_MAX - 1)
			GROW(buf, cap, (size_t)size + 1);
		rewind(f);
	}
	for (;;) {
		if (cap - n < 2) /* room for a byte and the NUL */
			GROW(buf, cap, n + 65536);
		size_t got = fread(buf + n, 1, cap - n - 1, f);
		n += got;
		if (got == 0)
			break;
	}
	int err = ferror(f) ? errno : 0;
	if (f != stdin)
		fclose(f);
	if (err != 0) {
		fprintf(stderr, PROG ": %s: %s\n", path, strerror(err));
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	*len = n;
	return buf;
}

/* ------------------------------------------------- the JSON reader */

enum jtype { J_NULL, J_FALSE, J_TRUE, J_NUM, J_STR, J_ARR, J_OBJ };

/*
 * One value of the tree of the element being read.  Members and elements
 * are chained through `next`, in file order; an object's members carry
 * their names.  Nodes are addressed by index: the array moves as it grows.
 */
typedef struct jnode {
	enum jtype type;
	size_t next;            /* next member or element, NONE at the end */
	const char *key;        /* member name, inside an object */
	size_t keylen;
	const char *str;        /* J_STR: UTF-8, may hold NUL bytes; J_NUM:
	                         * its text, as the file has it */
	size_t len;
	double num;             /* J_NUM */
	size_t first;           /* J_ARR, J_OBJ: first child, NONE if empty */
} jnode;

typedef struct reader {
	const char *path;
	const char *buf;        /* the file, NUL-terminated */
	size_t len, pos;
	jnode *nodes;           /* the current element's tree */
	size_t nnodes, capnodes;
	arena scratch;          /* its strings that had escapes */
	char err[200];          /* the first error, with errpos */
	size_t errpos;
} reader;

static bool
fail(reader *r, size_t pos, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->err, sizeof r->err, fmt, ap);
	va_end(ap);
	r->errpos = pos;
	return false;
}

static int
peek(const reader *r)
{
	return r->pos < r->len ? (unsigned char)r->buf[r->pos] : -1;
}

/* What was found at pos, for an error message. */
static const char *
found(const reader *r, size_t pos)
{
	static char s[32];
	if (pos >= r->len)
		return "end of input";
	unsigned char c = (unsigned char)r->buf[pos];
	if (c >= 0x20 && c < 0x7f)
		snprintf(s, sizeof s, "'%c'", c);
	else
		snprintf(s, sizeof s, "byte 0x%02x", c);
	return s;
}

static void
skip_ws(reader *r)
{
	while (r->pos < r->len) {
		char c = r->buf[r->pos];
		if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
			break;
		r->pos++;
	}
}

static size_t
new_node(reader *r, enum jtype type)
{
	GROW(r->nodes, r->capnodes, r->nnodes + 1);
	jnode *n = &r->nodes[r->nnodes];
	memset(n, 0, sizeof *n);
	n->type = type;
	n->next = NONE;
	n->first = NONE;
	return r->nnodes++;
}

/* The length of the UTF-8 sequence at s (n bytes left), 0 when it is not
 * a well-formed one: overlong forms, surrogates and code points above
 * U+10FFFF are refused as RFC 3629 says. */
static size_t
utf8_seq(const unsigned char *s, size_t n)
{
	unsigned c = s[0];
	size_t len;
	unsigned lo = 0x80, hi = 0xbf; /* bounds of the second byte */
	if (c < 0x80)
		return 1;
	if (c < 0xc2)
		return 0;
	if (c < 0xe0) {
		len = 2;
	} else if (c < 0xf0) {
		len = 3;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	} else if (c < 0xf5) {
		len = 4;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else {
		return 0;
	}
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return len;
}

static size_t
utf8_put(char *d, uint32_t cp)
{
	if (cp < 0x80) {
		d[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		d[0] = (char)(0xc0 | cp >> 6);
		d[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		d[0] = (char)(0xe0 | cp >> 12);
		d[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		d[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	d[0] = (char)(0xf0 | cp >> 18);
	d[1] = (char)(0x80 | (cp >> 12 & 0x3f));
	d[2] = (char)(0x80 | (cp >> 6 & 0x3f));
	d[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* The four hex digits of a \u escape at p, before end; -1 if not. */
static long
hex4(const char *p, const char *end)
{
	long v = 0;
	if (end - p < 4)
		return -1;
	for (int i = 0; i < 4; i++) {
		char c = p[i];
		int d;
		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			d = c - 'A' + 10;
		else
			return -1;
		v = v * 16 + d;
	}
	return v;
}

/*
 * The string at r->pos (its opening quote).  Two passes: the first finds
 * the closing quote and checks the raw bytes (UTF-8, no control
 * character); most strings have no escape and are then returned where
 * they lie in the file.  Otherwise the second decodes into the scratch
 * arena: the result is never longer than the source, every escape being
 * at least as long as what it stands for.
 */
static bool
parse_string(reader *r, const char **out, size_t *outlen)
{
	const unsigned char *b = (const unsigned char *)r->buf;
	size_t start = r->pos, p = start + 1;
	bool escapes = false;
	for (;;) {
		if (p >= r->len)
			return fail(r, p, "end of input inside the string that "
			    "starts at byte %zu", start);
		unsigned c = b[p];
		if (c == '"')
			break;
		if (c == '\\') {
			/* The escaped character is checked here for the
			 * message; \u's digits by the decoder. */
			if (p + 1 < r->len && (r->buf[p + 1] == '\0' ||
			    strchr("\"\\/bfnrtu", r->buf[p + 1]) == NULL))
				return fail(r, p, "invalid escape in a string: "
				    "backslash followed by %s", found(r, p + 1));
			escapes = true;
			p += 2;
		} else if (c < 0x20) {
			return fail(r, p, "control character 0x%02x in a string "
			    "(it must be escaped)", c);
		} else if (c < 0x80) {
			p++;
		} else {
			size_t n = utf8_seq(b + p, r->len - p);
			if (n == 0)
				return fail(r, p, "invalid UTF-8 in a string");
			p += n;
		}
	}
	size_t end = p; /* the closing quote */
	r->pos = end + 1;
	if (!escapes) {
		*out = r->buf + start + 1;
		*outlen = end - start - 1;
		return true;
	}

	char *d = arena_alloc(&r->scratch, end - start);
	size_t n = 0;
	const char *stop = r->buf + end;
	for (p = start + 1; p < end;) {
		char c = r->buf[p];
		if (c != '\\') {
			d[n++] = c;
			p++;
			continue;
		}
		char e = r->buf[p + 1];
		switch (e) {
		case '"': case '\\': case '/':
			d[n++] = e;
			break;
		case 'b': d[n++] = '\b'; break;
		case 'f': d[n++] = '\f'; break;
		case 'n': d[n++] = '\n'; break;
		case 'r': d[n++] = '\r'; break;
		case 't': d[n++] = '\t'; break;
		case 'u': {
			long cp = hex4(r->buf + p + 2, stop);
			if (cp < 0)
				return fail(r, p, "\\u must be followed by four "
				    "hex digits");
			if (cp >= 0xdc00 && cp <= 0xdfff)
				return fail(r, p, "unpaired surrogate \\u%04lX in "
				    "a string", cp);
			if (cp >= 0xd800 && cp <= 0xdbff) {
				long lo = -1;
				if (p + 12 <= end && r->buf[p + 6] == '\\' &&
				    r->buf[p + 7] == 'u')
					lo = hex4(r->buf + p + 8, stop);
				if (lo < 0xdc00 || lo > 0xdfff)
					return fail(r, p, "unpaired surrogate "
					    "\\u%04lX in a string", cp);
				cp = 0x10000 + ((cp - 0xd800) << 10) +
				    (lo - 0xdc00);
				p += 6;
			}
			n += utf8_put(d + n, (uint32_t)cp);
			p += 6;
			continue;
		}
		default: /* refused by the first pass */
			return fail(r, p, "invalid escape in a string");
		}
		p += 2;
	}
	*out = d;
	*outlen = n;
	return true;
}

static bool
is_digit(int c)
{
	return c >= '0' && c <= '9';
}

/* The grammar is checked here; strtod converts what it accepted (the C
 * locale's '.', as nothing calls setlocale). */
static bool
parse_number(reader *r, double *out)
{
	const char *b = r->buf;
	size_t start = r->pos, p = start;
	if (b[p] == '-')
		p++;
	if (b[p] == '0') {
		if (is_digit(b[++p]))
			return fail(r, p, "leading zero in a number");
	} else if (is_digit(b[p])) {
		while (is_digit(b[p]))
			p++;
	} else {
		return fail(r, p, "expected a digit, found %s", found(r, p));
	}
	if (b[p] == '.') {
		if (!is_digit(b[++p]))
			return fail(r, p, "expected a digit after '.', found %s",
			    found(r, p));
		while (is_digit(b[p]))
			p++;
	}
	if (b[p] == 'e' || b[p] == 'E') {
		p++;
		if (b[p] == '+' || b[p] == '-')
			p++;
		if (!is_digit(b[p]))
			return fail(r, p, "expected a digit in the exponent, "
			    "found %s", found(r, p));
		while (is_digit(b[p]))
			p++;
	}
	char *end;
	double v = strtod(b + start, &end);
	if (end != b + p)
		return fail(r, start, "malformed number");
	if (isinf(v))
		return fail(r, start, "number out of range");
	*out = v;
	r->pos = p;
	return true;
}

static bool parse_value(reader *r, int depth, size_t *out);

/* An array or an object, at r->pos (its bracket), `depth` levels deep. */
static bool
parse_container(reader *r, int depth, size_t *out)
{
	bool object = r->buf[r->pos] == '{';
	char close = object ? '}' : ']';
	const char *what = object ? "an object" : "an array";
	if (depth > MAX_NESTING)
		return fail(r, r->pos, "nesting deeper than %d levels",
		    MAX_NESTING);
	size_t self = new_node(r, object ? J_OBJ : J_ARR), last = NONE;
	r->pos++;
	skip_ws(r);
	if (peek(r) == close) {
		r->pos++;
		*out = self;
		return true;
	}
	for (;;) {
		const char *key = NULL;
		size_t keylen = 0, v;
		skip_ws(r);
		if (object) {
			if (peek(r) != '"')
				return fail(r, r->pos, "expected a member name "
				    "(a string) in %s, found %s", what,
				    found(r, r->pos));
			if (!parse_string(r, &key, &keylen))
				return false;
			skip_ws(r);
			if (peek(r) != ':')
				return fail(r, r->pos, "expected ':' after a "
				    "member name, found %s", found(r, r->pos));
			r->pos++;
		}
		if (!parse_value(r, depth, &v))
			return false;
		r->nodes[v].key = key;
		r->nodes[v].keylen = keylen;
		if (last == NONE)
			r->nodes[self].first = v;
		else
			r->nodes[last].next = v;
		last = v;
		skip_ws(r);
		int c = peek(r);
		if (c == ',') {
			r->pos++;
			continue;
		}
		if (c == close) {
			r->pos++;
			break;
		}
		return fail(r, r->pos, "expected ',' or '%c' in %s, found %s",
		    close, what, found(r, r->pos));
	}
	*out = self;
	return true;
}

/* Any value; `depth` counts the containers around it. */
static bool
parse_value(reader *r, int depth, size_t *out)
{
	static const struct {
		const char *word;
		enum jtype type;
	} literals[] = {
		{ "true", J_TRUE }, { "false", J_FALSE }, { "null", J_NULL },
	};
	skip_ws(r);
	int c = peek(r);
	if (c == '{' || c == '[')
		return parse_container(r, depth + 1, out);
	if (c == '"') {
		const char *s;
		size_t n;
		if (!parse_string(r, &s, &n))
			return false;
		*out = new_node(r, J_STR);
		r->nodes[*out].str = s;
		r->nodes[*out].len = n;
		return true;
	}
	if (c == '-' || is_digit(c)) {
		double v = 0; /* set by parse_number (gcc cannot tell) */
		size_t start = r->pos;
		if (!parse_number(r, &v))
			return false;
		*out = new_node(r, J_NUM);
		r->nodes[*out].num = v;
		/* The text too: the merge writes it back unchanged, and
		 * reads integers beyond a double's 2^53 from it. */
		r->nodes[*out].str = r->buf + start;
		r->nodes[*out].len = r->pos - start;
		return true;
	}
	for (size_t i = 0; i < sizeof literals / sizeof literals[0]; i++) {
		size_t n = strlen(literals[i].word);
		if (c == literals[i].word[0]) {
			if (r->len - r->pos < n ||
			    memcmp(r->buf + r->pos, literals[i].word, n) != 0)
				return fail(r, r->pos, "invalid literal (expected "
				    "%s)", literals[i].word);
			r->pos += n;
			*out = new_node(r, literals[i].type);
			return true;
		}
	}
	return fail(r, r->pos, "expected a value, found %s", found(r, r->pos));
}

/* Forgets the tree of the element just taken. */
static void
reader_reset(reader *r)
{
	r->nnodes = 0;
	arena_reset(&r->scratch);
}

static bool
key_is(const char *k, size_t n, const char *want)
{
	return n == strlen(want) && memcmp(k, want, n) == 0;
}

/* The member `key` of obj (the last one if repeated), NONE if absent or
 * obj is no object. */
static size_t
member(const reader *r, size_t obj, const char *key)
{
	size_t hit = NONE;
	if (obj == NONE || r->nodes[obj].type != J_OBJ)
		return NONE;
	for (size_t i = r->nodes[obj].first; i != NONE; i = r->nodes[i].next)
		if (key_is(r->nodes[i].key, r->nodes[i].keylen, key))
			hit = i;
	return hit;
}

static bool
member_str(const reader *r, size_t obj, const char *key, const char **s,
    size_t *n)
{
	size_t m = member(r, obj, key);
	if (m == NONE || r->nodes[m].type != J_STR)
		return false;
	*s = r->nodes[m].str;
	*n = r->nodes[m].len;
	return true;
}

static bool
member_num(const reader *r, size_t obj, const char *key, double *v)
{
	size_t m = member(r, obj, key);
	if (m == NONE || r->nodes[m].type != J_NUM)
		return false;
	*v = r->nodes[m].num;
	return true;
}

/* ------------------------------------------------------- the trace */

/* One "X" event: an execution that ran. */
typedef struct slice {
	double ts, dur;         /* microseconds */
	double pending;         /* args.pending_us, NAN when absent */
	uint32_t flow, exec, lane;
	uint32_t parent;        /* the parent's exec, NONE32 for a root */
	uint32_t next_child;    /* next slice of the same parent */
	uint32_t depth;         /* nesting on its thread */
	uint8_t status;
} slice;

/* One execution id, from its X, b, e or from a child's args.parent. */
typedef struct exec {
	const char *id;
	size_t idlen;
	uint32_t flow;          /* NONE32 until an event names it */
	uint32_t slice;         /* its X, NONE32 if none */
	uint32_t first_child;   /* first slice whose parent it is */
	uint32_t stamp;         /* critical path walks: cycle guard */
	bool seen_b, seen_e;
	bool seen_s;            /* an s arrow names it (the merge) */
	uint8_t e_status;
} exec;

typedef struct flow {
	const char *name;
	size_t len;
	size_t count;           /* executions */
	size_t by_status[4];
	size_t runs;            /* X slices */
	double total, mean, p50, p99;
	size_t npending;
	double pmean, pp50, pp99;
	bool used;              /* drawn in the SVG */
	char colour[8];
} flow;

/* A thread: its slices form one lane of the SVG. */
typedef struct lane {
	int64_t pid, tid;
	const char *label;      /* thread_name metadata, NULL if none */
	size_t labellen;
} lane;

/* A process: a pid that some event has, and its process_name. */
typedef struct proc {
	int64_t pid;
	const char *label;      /* process_name metadata, NULL if none */
	size_t labellen;
} proc;

/* Open addressing, linear probing; a slot holds index + 1 (0: empty) and
 * the key's hash, so that growing never needs the keys. */
typedef struct slot {
	uint32_t idx1, hash;
} slot;

typedef struct table {
	slot *slots;
	size_t cap, count;
} table;

typedef struct trace {
	const char *buf;        /* the file: its strings need no copy */
	size_t len;
	arena strings;          /* copies of the others */
	slice *slices;
	size_t nslices, capslices;
	exec *execs;
	size_t nexecs, capexecs;
	flow *flows;
	size_t nflows, capflows;
	lane *lanes;
	size_t nlanes, caplanes;
	proc *procs;
	size_t nprocs, capprocs;
	table exec_tab, flow_tab, lane_tab, proc_tab;
	size_t events;          /* elements of traceEvents */
	double dropped;         /* otherData */
	bool have_dropped;
	const char *producer, *version, *keep;
	size_t producerlen, versionlen, keeplen;
	double buffer_events;
	size_t ignored;         /* events left out, with the first reason */
	size_t ignored_pos;
	const char *ignored_why;
} trace;

static uint32_t
fnv1a(const void *p, size_t n)
{
	const unsigned char *s = p;
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ s[i]) * 16777619u;
	return h;
}

/* The slot of the item with this hash that `same` accepts, or the empty
 * slot where it would go. */
static slot *
table_find(table *t, uint32_t hash, bool (*same)(const trace *, uint32_t,
    const void *), const trace *tr, const void *key)
{
	if (t->cap == 0)
		return NULL;
	size_t mask = t->cap - 1;
	for (size_t i = hash & mask;; i = (i + 1) & mask) {
		slot *s = &t->slots[i];
		if (s->idx1 == 0 ||
		    (s->hash == hash && same(tr, s->idx1 - 1, key)))
			return s;
	}
}

static void
table_add(table *t, uint32_t hash, uint32_t idx)
{
	if (2 * (t->count + 1) > t->cap) {
		/* Half full at most: probes stay short. */
		size_t cap = t->cap != 0 ? 2 * t->cap : 64;
		if (cap > SIZE_MAX / sizeof(slot))
			out_of_memory();
		slot *old = t->slots;
		size_t oldcap = t->cap;
		t->slots = calloc(cap, sizeof(slot));
		if (t->slots == NULL)
			out_of_memory();
		t->cap = cap;
		for (size_t i = 0; i < oldcap; i++) {
			if (old[i].idx1 == 0)
				continue;
			size_t j = old[i].hash & (cap - 1);
			while (t->slots[j].idx1 != 0)
				j = (j + 1) & (cap - 1);
			t->slots[j] = old[i];
		}
		free(old);
	}
	size_t j = hash & (t->cap - 1);
	while (t->slots[j].idx1 != 0)
		j = (j + 1) & (t->cap - 1);
	t->slots[j].idx1 = idx + 1;
	t->slots[j].hash = hash;
	t->count++;
}

typedef struct bytes {
	const char *p;
	size_t n;
} bytes;

static bool
same_exec(const trace *t, uint32_t i, const void *key)
{
	const bytes *k = key;
	return t->execs[i].idlen == k->n &&
	    memcmp(t->execs[i].id, k->p, k->n) == 0;
}

static bool
same_flow(const trace *t, uint32_t i, const void *key)
{
	const bytes *k = key;
	return t->flows[i].len == k->n &&
	    memcmp(t->flows[i].name, k->p, k->n) == 0;
}

static bool
same_lane(const trace *t, uint32_t i, const void *key)
{
	const int64_t *k = key;
	return t->lanes[i].pid == k[0] && t->lanes[i].tid == k[1];
}

static bool
same_proc(const trace *t, uint32_t i, const void *key)
{
	return t->procs[i].pid == *(const int64_t *)key;
}

/* A string of the element being read, kept for the whole run: those in
 * the file as they are, decoded ones copied. */
static const char *
keep_str(trace *t, const char *s, size_t n)
{
	if (s >= t->buf && s < t->buf + t->len)
		return s;
	char *c = arena_alloc(&t->strings, n);
	memcpy(c, s, n);
	return c;
}

/* Indexes are 32 bits wide: far more than a file of a few GB holds. */
static uint32_t
next_index(size_t n)
{
	if (n >= NONE32 - 1) {
		fprintf(stderr, PROG ": too many events\n");
		exit(1);
	}
	return (uint32_t)n;
}

static uint32_t
intern_exec(trace *t, const char *id, size_t n)
{
	bytes k = { id, n };
	uint32_t h = fnv1a(id, n);
	slot *s = table_find(&t->exec_tab, h, same_exec, t, &k);
	if (s != NULL && s->idx1 != 0)
		return s->idx1 - 1;
	uint32_t i = next_index(t->nexecs);
	GROW(t->execs, t->capexecs, t->nexecs + 1);
	exec *e = &t->execs[t->nexecs++];
	memset(e, 0, sizeof *e);
	e->id = keep_str(t, id, n);
	e->idlen = n;
	e->flow = e->slice = e->first_child = NONE32;
	table_add(&t->exec_tab, h, i);
	return i;
}

static uint32_t
intern_flow(trace *t, const char *name, size_t n)
{
	bytes k = { name, n };
	uint32_t h = fnv1a(name, n);
	slot *s = table_find(&t->flow_tab, h, same_flow, t, &k);
	if (s != NULL && s->idx1 != 0)
		return s->idx1 - 1;
	uint32_t i = next_index(t->nflows);
	GROW(t->flows, t->capflows, t->nflows + 1);
	flow *f = &t->flows[t->nflows++];
	memset(f, 0, sizeof *f);
	f->name = keep_str(t, name, n);
	f->len = n;
	table_add(&t->flow_tab, h, i);
	return i;
}

static uint32_t
intern_lane(trace *t, int64_t pid, int64_t tid)
{
	int64_t k[2] = { pid, tid };
	uint32_t h = fnv1a(k, sizeof k);
	slot *s = table_find(&t->lane_tab, h, same_lane, t, k);
	if (s != NULL && s->idx1 != 0)
		return s->idx1 - 1;
	uint32_t i = next_index(t->nlanes);
	GROW(t->lanes, t->caplanes, t->nlanes + 1);
	lane *l = &t->lanes[t->nlanes++];
	memset(l, 0, sizeof *l);
	l->pid = pid;
	l->tid = tid;
	table_add(&t->lane_tab, h, i);
	return i;
}

static uint32_t
intern_proc(trace *t, int64_t pid)
{
	uint32_t h = fnv1a(&pid, sizeof pid);
	slot *s = table_find(&t->proc_tab, h, same_proc, t, &pid);
	if (s != NULL && s->idx1 != 0)
		return s->idx1 - 1;
	uint32_t i = next_index(t->nprocs);
	GROW(t->procs, t->capprocs, t->nprocs + 1);
	proc *p = &t->procs[t->nprocs++];
	memset(p, 0, sizeof *p);
	p->pid = pid;
	table_add(&t->proc_tab, h, i);
	return i;
}

/* The process of this pid, NONE32 if no event has it. */
static uint32_t
find_proc(const trace *t, int64_t pid)
{
	/* table_find's table is not const, but a lookup changes nothing. */
	table *tab = (table *)&t->proc_tab;
	slot *s = table_find(tab, fnv1a(&pid, sizeof pid), same_proc, t, &pid);
	return s != NULL && s->idx1 != 0 ? s->idx1 - 1 : NONE32;
}

/* Everything, so that a leak checker (configure --enable-asan) has
 * nothing to report. */
static void
trace_free(trace *t)
{
	arena_free(&t->strings);
	free(t->slices);
	free(t->execs);
	free(t->flows);
	free(t->lanes);
	free(t->procs);
	free(t->exec_tab.slots);
	free(t->flow_tab.slots);
	free(t->lane_tab.slots);
	free(t->proc_tab.slots);
}

/* ---------------------------------------------------- taking events */

/* Well-formed JSON that is no usable event: counted, the first reason
 * kept for the warning, and the run goes on (a trace from another
 * producer, or a newer libpumped with other fields, is still read). */
static bool
ignore(trace *t, size_t pos, const char *why)
{
	if (t->ignored++ == 0) {
		t->ignored_pos = pos;
		t->ignored_why = why;
	}
	return false;
}

static enum status
status_of(const char *s, size_t n)
{
	for (int i = ST_COMPLETED; i <= ST_CANCELLED; i++)
		if (key_is(s, n, status_names[i]))
			return (enum status)i;
	return ST_OTHER;
}

/* pid and tid: integers (a double holds them exactly below 2^53). */
static bool
member_int(const reader *r, size_t obj, const char *key, int64_t *v)
{
	double d;
	if (!member_num(r, obj, key, &d) || d != floor(d) ||
	    fabs(d) > 9007199254740992.0)
		return false;
	*v = (int64_t)d;
	return true;
}

static bool
in_range(double us)
{
	return fabs(us) <= MAX_US;
}

static bool
take_slice(trace *t, const reader *r, size_t ev, size_t pos)
{
	const char *name, *id, *s;
	size_t namelen, idlen, n;
	double ts, dur, pending = NAN;
	int64_t pid = 0, tid;
	size_t args = member(r, ev, "args");
	if (!member_str(r, ev, "name", &name, &namelen))
		return ignore(t, pos, "an X event without a name");
	if (!member_num(r, ev, "ts", &ts) || !in_range(ts))
		return ignore(t, pos, "an X event without a valid ts");
	if (!member_num(r, ev, "dur", &dur) || !in_range(dur) || dur < 0)
		return ignore(t, pos, "an X event without a valid dur");
	if (!member_int(r, ev, "tid", &tid))
		return ignore(t, pos, "an X event without an integer tid");
	if (member(r, ev, "pid") != NONE && !member_int(r, ev, "pid", &pid))
		return ignore(t, pos, "an X event whose pid is no integer");
	if (!member_str(r, args, "id", &id, &idlen))
		return ignore(t, pos, "an X event without args.id");
	size_t par = member(r, args, "parent");
	if (par != NONE && r->nodes[par].type != J_STR &&
	    r->nodes[par].type != J_NULL)
		return ignore(t, pos, "an X event whose args.parent is neither "
		    "a string nor null");
	/* Optional: an absent or odd pending_us leaves it out of the
	 * pending figures, the slice still counts. */
	if (member_num(r, args, "pending_us", &pending) &&
	    (!in_range(pending) || pending < 0))
		pending = NAN;

	uint32_t e = intern_exec(t, id, idlen);
	if (t->execs[e].slice != NONE32)
		return ignore(t, pos, "a second X event for one execution id");
	uint32_t i = next_index(t->nslices);
	GROW(t->slices, t->capslices, t->nslices + 1);
	slice *sl = &t->slices[t->nslices++];
	memset(sl, 0, sizeof *sl);
	sl->ts = ts;
	sl->dur = dur;
	sl->pending = pending;
	sl->exec = e;
	sl->flow = intern_flow(t, name, namelen);
	sl->lane = intern_lane(t, pid, tid);
	sl->status = member_str(r, args, "status", &s, &n) ?
	    (uint8_t)status_of(s, n) : ST_OTHER;
	sl->parent = par != NONE && r->nodes[par].type == J_STR ?
	    intern_exec(t, r->nodes[par].str, r->nodes[par].len) : NONE32;
	sl->next_child = NONE32;
	t->execs[e].slice = i;
	t->execs[e].flow = sl->flow;
	return true;
}

/* "b" and "e": an execution's life.  Only those that never ran (no X)
 * need them: their flow and terminal status. */
static bool
take_life(trace *t, const reader *r, size_t ev, size_t pos, bool begin)
{
	const char *id, *name, *s;
	size_t idlen, namelen, n;
	if (!member_str(r, ev, "id", &id, &idlen))
		return ignore(t, pos, "a b or e event without a string id");
	uint32_t i = intern_exec(t, id, idlen); /* may move t->execs */
	exec *e = &t->execs[i];
	if (e->flow == NONE32 && member_str(r, ev, "name", &name, &namelen))
		e->flow = intern_flow(t, name, namelen);
	if (begin) {
		e->seen_b = true;
	} else {
		e->seen_e = true;
		e->e_status = member_str(r, member(r, ev, "args"), "status",
		    &s, &n) ? (uint8_t)status_of(s, n) : ST_OTHER;
	}
	return true;
}

static bool
take_meta(trace *t, const reader *r, size_t ev, size_t pos)
{
	const char *name, *label;
	size_t namelen, labellen;
	int64_t pid = 0, tid;
	if (!member_str(r, ev, "name", &name, &namelen))
		return true;
	if (key_is(name, namelen, "process_name")) {
		/* A lane's label in the SVG of several processes ("rank 1");
		 * an odd one was never a reason to warn: left out quietly. */
		if ((member(r, ev, "pid") == NONE ||
		    member_int(r, ev, "pid", &pid)) &&
		    member_str(r, member(r, ev, "args"), "name", &label,
		    &labellen)) {
			/* Interned first: it may move t->procs. */
			uint32_t pi = intern_proc(t, pid);
			proc *p = &t->procs[pi];
			p->label = keep_str(t, label, labellen);
			p->labellen = labellen;
		}
		return true;
	}
	if (!key_is(name, namelen, "thread_name"))
		return true; /* other metadata: nothing to use */
	if (!member_int(r, ev, "tid", &tid) ||
	    (member(r, ev, "pid") != NONE && !member_int(r, ev, "pid", &pid)) ||
	    !member_str(r, member(r, ev, "args"), "name", &label, &labellen))
		return ignore(t, pos, "a thread_name event without integer "
		    "pid and tid and args.name");
	uint32_t i = intern_lane(t, pid, tid); /* may move t->lanes */
	lane *l = &t->lanes[i];
	l->label = keep_str(t, label, labellen);
	l->labellen = labellen;
	return true;
}

static void
take_event(trace *t, const reader *r, size_t ev, size_t pos)
{
	const char *ph;
	size_t n;
	int64_t pid = 0;
	t->events++;
	/* The processes: every integer pid, a missing one being 0 (as the
	 * lanes take it). */
	if (r->nodes[ev].type == J_OBJ && (member(r, ev, "pid") == NONE ||
	    member_int(r, ev, "pid", &pid)))
		intern_proc(t, pid);
	if (r->nodes[ev].type != J_OBJ)
		ignore(t, pos, "an event that is no object");
	else if (!member_str(r, ev, "ph", &ph, &n))
		ignore(t, pos, "an event without a string ph");
	else if (key_is(ph, n, "X"))
		take_slice(t, r, ev, pos);
	else if (key_is(ph, n, "b") || key_is(ph, n, "e"))
		take_life(t, r, ev, pos, ph[0] == 'b');
	else if (key_is(ph, n, "M"))
		take_meta(t, r, ev, pos);
	/* s, f, i and phases of other producers: nothing to summarise. */
}

static void
take_other_data(trace *t, const reader *r, size_t od)
{
	const char *s;
	size_t n;
	double v;
	if (member_num(r, od, "dropped_events", &v) && v >= 0) {
		t->dropped = v;
		t->have_dropped = true;
	}
	if (member_num(r, od, "buffer_events", &v))
		t->buffer_events = v;
	if (member_str(r, od, "keep", &s, &n)) {
		t->keep = keep_str(t, s, n);
		t->keeplen = n;
	}
	if (member_str(r, od, "producer", &s, &n)) {
		t->producer = keep_str(t, s, n);
		t->producerlen = n;
	}
	if (member_str(r, od, "version", &s, &n)) {
		t->version = keep_str(t, s, n);
		t->versionlen = n;
	}
}

/*
 * What a reading does with the document: each element of traceEvents,
 * and each other member of the top-level object, is handed over as the
 * reader's tree, forgotten when the call returns.  The summary takes what
 * it needs into compact records; the merge reads each file twice, once
 * to learn and once to write.  `member` may be NULL.
 */
typedef struct sink {
	void (*event)(void *ctx, const reader *r, size_t ev, size_t pos);
	void (*member)(void *ctx, const reader *r, const char *key,
	    size_t keylen, size_t v);
	void *ctx;
} sink;

/* The elements of the traceEvents array at r->pos, one tree each. */
static bool
read_events(const sink *k, reader *r, int depth)
{
	r->pos++; /* '[' */
	skip_ws(r);
	if (peek(r) == ']') {
		r->pos++;
		return true;
	}
	for (;;) {
		size_t ev;
		skip_ws(r);
		size_t pos = r->pos;
		if (!parse_value(r, depth, &ev))
			return false;
		k->event(k->ctx, r, ev, pos);
		reader_reset(r);
		skip_ws(r);
		int c = peek(r);
		if (c == ',') {
			r->pos++;
		} else if (c == ']') {
			r->pos++;
			return true;
		} else {
			return fail(r, r->pos, "expected ',' or ']' in "
			    "traceEvents, found %s", found(r, r->pos));
		}
	}
}

/*
 * The document: an object whose traceEvents are read one by one and
 * whose other members go whole to k->member, or, as Chrome also accepts,
 * a bare array of events.
 */
static bool
read_doc(const sink *k, reader *r)
{
	bool have_events = false;
	skip_ws(r);
	if (peek(r) == '[') {
		have_events = true;
		if (!read_events(k, r, 1))
			return false;
	} else if (peek(r) == '{') {
		r->pos++;
		skip_ws(r);
		bool first = true;
		while (!(first && peek(r) == '}')) {
			const char *key;
			size_t keylen, v;
			first = false;
			skip_ws(r);
			if (peek(r) != '"')
				return fail(r, r->pos, "expected a member name "
				    "(a string) in an object, found %s",
				    found(r, r->pos));
			if (!parse_string(r, &key, &keylen))
				return false;
			skip_ws(r);
			if (peek(r) != ':')
				return fail(r, r->pos, "expected ':' after a "
				    "member name, found %s", found(r, r->pos));
			r->pos++;
			skip_ws(r);
			if (key_is(key, keylen, "traceEvents") &&
			    peek(r) == '[') {
				have_events = true;
				if (!read_events(k, r, 2))
					return false;
			} else {
				if (!parse_value(r, 1, &v))
					return false;
				if (k->member != NULL)
					k->member(k->ctx, r, key, keylen, v);
			}
			reader_reset(r);
			skip_ws(r);
			if (peek(r) == '}')
				break;
			if (peek(r) != ',')
				return fail(r, r->pos, "expected ',' or '}' in "
				    "an object, found %s", found(r, r->pos));
			r->pos++;
		}
		r->pos++; /* '}' */
	} else {
		return fail(r, r->pos, "expected a JSON object or array, found "
		    "%s", found(r, r->pos));
	}
	skip_ws(r);
	if (r->pos < r->len)
		return fail(r, r->pos, "unexpected %s after the JSON document",
		    found(r, r->pos));
	if (!have_events)
		return fail(r, 0, "no traceEvents array: not a trace");
	return true;
}

static void
summary_event(void *ctx, const reader *r, size_t ev, size_t pos)
{
	take_event(ctx, r, ev, pos);
}

static void
summary_member(void *ctx, const reader *r, const char *key, size_t keylen,
    size_t v)
{
	if (key_is(key, keylen, "otherData"))
		take_other_data(ctx, r, v);
}

static bool
read_trace(trace *t, reader *r)
{
	sink k = { summary_event, summary_member, t };
	return read_doc(&k, r);
}

/* "FILE:LINE:COL: byte N: message", the line found only now. */
static void
report(const reader *r)
{
	size_t line = 1, col = 1;
	for (size_t i = 0; i < r->errpos && i < r->len; i++) {
		if (r->buf[i] == '\n') {
			line++;
			col = 1;
		} else {
			col++;
		}
	}
	fprintf(stderr, PROG ": %s:%zu:%zu: byte %zu: %s\n", r->path, line,
	    col, r->errpos, r->err);
}

/* -------------------------------------------------------- analysis */

/* The nearest-rank percentile of n sorted values: the value at rank
 * ceil(p * n / 100), in integers so that 99 * n / 100 is exact. */
static double
percentile(const double *v, size_t n, unsigned p)
{
	size_t rank = (p * n + 99) / 100;
	return v[rank > 0 ? rank - 1 : 0];
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Per flow: counts, run and pending times; and the children lists. */
static void
analyse(trace *t)
{
	size_t *start = calloc(t->nflows + 1, sizeof(size_t));
	uint32_t *order = xmalloc((t->nslices + 1) * sizeof(uint32_t));
	double *v = xmalloc((t->nslices + 1) * sizeof(double));
	if (start == NULL)
		out_of_memory();

	/* Slices grouped by flow (a counting sort); children chained walking
	 * the slices backwards, so that each list is in file order and the
	 * first in the file wins the critical path's ties. */
	for (size_t i = 0; i < t->nslices; i++) {
		const slice *s = &t->slices[i];
		flow *f = &t->flows[s->flow];
		start[s->flow + 1]++;
		f->count++;
		f->runs++;
		f->by_status[s->status]++;
		f->total += s->dur;
	}
	for (size_t i = t->nslices; i-- > 0;) {
		slice *s = &t->slices[i];
		if (s->parent != NONE32) {
			s->next_child = t->execs[s->parent].first_child;
			t->execs[s->parent].first_child = (uint32_t)i;
		}
	}
	for (size_t f = 0; f < t->nflows; f++)
		start[f + 1] += start[f];
	for (size_t i = 0; i < t->nslices; i++)
		order[start[t->slices[i].flow]++] = (uint32_t)i;
	/* start[f] is now where flow f + 1 begins. */

	for (size_t fi = 0, from = 0; fi < t->nflows; fi++) {
		flow *f = &t->flows[fi];
		size_t to = start[fi], np = 0;
		if (f->runs > 0) {
			for (size_t k = from; k < to; k++)
				v[k - from] = t->slices[order[k]].dur;
			qsort(v, f->runs, sizeof(double), cmp_double);
			f->mean = f->total / (double)f->runs;
			f->p50 = percentile(v, f->runs, 50);
			f->p99 = percentile(v, f->runs, 99);
		}
		double sum = 0;
		for (size_t k = from; k < to; k++) {
			double p = t->slices[order[k]].pending;
			if (!isnan(p)) {
				v[np++] = p;
				sum += p;
			}
		}
		if (np > 0) {
			qsort(v, np, sizeof(double), cmp_double);
			f->npending = np;
			f->pmean = sum / (double)np;
			f->pp50 = percentile(v, np, 50);
			f->pp99 = percentile(v, np, 99);
		}
		from = to;
	}
	free(start);
	free(order);
	free(v);
}

/* Executions without an X slice that ended: those cancelled while pending
 * (the file's promise), or, when events were dropped, ones whose X was
 * lost.  Counted by the status of their e. */
static void
count_unsliced(trace *t, size_t *unstarted, size_t *lost, size_t *open)
{
	*unstarted = *lost = *open = 0;
	for (size_t i = 0; i < t->nexecs; i++) {
		exec *e = &t->execs[i];
		if (e->slice != NONE32)
			continue;
		if (!e->seen_e) {
			if (e->seen_b)
				(*open)++; /* no end: its e was dropped */
			continue;
		}
		if (e->flow == NONE32)
			e->flow = intern_flow(t, "(no name)", 9);
		flow *f = &t->flows[e->flow];
		f->count++;
		if (e->e_status == ST_COMPLETED || e->e_status == ST_FAILED) {
			f->by_status[e->e_status]++;
			(*lost)++;
		} else {
			f->by_status[ST_CANCELLED]++;
			(*unstarted)++;
		}
	}
}

static const trace *g_sort_trace; /* qsort has no context argument */

/* Flows by total run time, longest first, then by name. */
static int
cmp_flow(const void *a, const void *b)
{
	const flow *x = &g_sort_trace->flows[*(const uint32_t *)a];
	const flow *y = &g_sort_trace->flows[*(const uint32_t *)b];
	if (x->total != y->total)
		return x->total > y->total ? -1 : 1;
	size_t n = x->len < y->len ? x->len : y->len;
	int c = memcmp(x->name, y->name, n);
	if (c != 0)
		return c;
	return x->len < y->len ? -1 : x->len > y->len;
}

/* Roots by duration, longest first, then by start and file order. */
static int
cmp_root(const void *a, const void *b)
{
	uint32_t i = *(const uint32_t *)a, j = *(const uint32_t *)b;
	const slice *x = &g_sort_trace->slices[i];
	const slice *y = &g_sort_trace->slices[j];
	if (x->dur != y->dur)
		return x->dur > y->dur ? -1 : 1;
	if (x->ts != y->ts)
		return x->ts < y->ts ? -1 : 1;
	return i < j ? -1 : i > j;
}

static uint32_t *
sorted_flows(const trace *t)
{
	uint32_t *o = xmalloc((t->nflows + 1) * sizeof(uint32_t));
	for (size_t i = 0; i < t->nflows; i++)
		o[i] = (uint32_t)i;
	g_sort_trace = t;
	qsort(o, t->nflows, sizeof(uint32_t), cmp_flow);
	return o;
}

/* ----------------------------------------------------- text output */

/* A duration in microseconds, in a unit that keeps it short. */
static const char *
fmt_us(char buf[32], double us)
{
	double a = fabs(us);
	if (a < 1)
		snprintf(buf, 32, "%.0fns", us * 1e3);
	else if (a < 1e3)
		snprintf(buf, 32, "%.1fus", us);
	else if (a < 1e6)
		snprintf(buf, 32, "%.2fms", us / 1e3);
	else
		snprintf(buf, 32, "%.2fs", us / 1e6);
	return buf;
}

/* A name or id for the terminal: control characters escaped (\n, \t,
 * \xNN), so that a flow name cannot break a line or move the cursor. */
static void
put_text(FILE *f, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\n')
			fputs("\\n", f);
		else if (c == '\t')
			fputs("\\t", f);
		else if (c < 0x20 || c == 0x7f)
			fprintf(f, "\\x%02x", c);
		else
			fputc(c, f);
	}
}

static const char *
plural(size_t n)
{
	return n == 1 ? "" : "s";
}

static void
put_dur(FILE *f, double us, bool have)
{
	char b[32];
	fprintf(f, " %10s", have ? fmt_us(b, us) : "-");
}

/* The critical path from root: at each step the child that finished
 * last (ties: the first in the file). */
static void
print_path(trace *t, uint32_t root, uint32_t stamp)
{
	const slice *r = &t->slices[root];
	char b[32];
	printf("  step   share        run  id  flow\n");
	size_t step = 0;
	for (uint32_t cur = root; cur != NONE32; step++) {
		const slice *s = &t->slices[cur];
		exec *e = &t->execs[s->exec];
		e->stamp = stamp; /* a cycle of ids ends the walk */
		if (r->dur > 0)
			printf("  %4zu  %5.1f%% %10s  ", step,
			    100.0 * s->dur / r->dur, fmt_us(b, s->dur));
		else
			printf("  %4zu       - %10s  ", step, fmt_us(b, s->dur));
		put_text(stdout, e->id, e->idlen);
		fputs("  ", stdout);
		put_text(stdout, t->flows[s->flow].name, t->flows[s->flow].len);
		putchar('\n');

		uint32_t next = NONE32;
		double best = 0;
		for (uint32_t c = e->first_child; c != NONE32;
		    c = t->slices[c].next_child) {
			const slice *k = &t->slices[c];
			double end = k->ts + k->dur;
			if (t->execs[k->exec].stamp == stamp)
				continue;
			if (next == NONE32 || end > best) {
				next = c;
				best = end;
			}
		}
		cur = next;
	}
}

static void
print_summary(trace *t, const char *path, size_t roots_wanted)
{
	size_t unstarted, lost, open, nroots = 0;
	count_unsliced(t, &unstarted, &lost, &open);
	uint32_t *fo = sorted_flows(t);
	size_t nexec = 0, nflows = 0;
	for (size_t i = 0; i < t->nflows; i++) {
		nexec += t->flows[i].count;
		nflows += t->flows[i].count > 0;
	}

	printf("trace: ");
	put_text(stdout, path, strlen(path));
	if (t->producer != NULL) {
		fputs(" (", stdout);
		put_text(stdout, t->producer, t->producerlen);
		if (t->version != NULL) {
			putchar(' ');
			put_text(stdout, t->version, t->versionlen);
		}
		putchar(')');
	}
	/* Links across processes: a slice whose parent ran in another
	 * process (a merged MPI trace: the parent is the proxy on the rank
	 * that asked, docs/trace.md). */
	size_t links = 0;
	for (size_t i = 0; i < t->nslices; i++) {
		const slice *s = &t->slices[i];
		if (s->parent == NONE32) {
			nroots++;
			continue;
		}
		uint32_t p = t->execs[s->parent].slice;
		if (p != NONE32 && t->lanes[t->slices[p].lane].pid !=
		    t->lanes[s->lane].pid)
			links++;
	}
	printf("\n%zu event%s, %zu execution%s of %zu flow%s, %zu root%s, %zu "
	    "thread%s", t->events, plural(t->events), nexec, plural(nexec),
	    nflows, plural(nflows), nroots, plural(nroots), t->nlanes,
	    plural(t->nlanes));
	if (t->nprocs > 1)
		printf(" in %zu processes", t->nprocs);
	putchar('\n');
	if (links > 0 || t->nprocs > 1)
		printf("links across processes: %zu\n", links);
	printf("dropped_events: %.0f", t->dropped);
	if (t->have_dropped && t->keep != NULL) {
		printf(" (buffer_events %.0f, keep \"", t->buffer_events);
		put_text(stdout, t->keep, t->keeplen);
		printf("\")");
	} else if (!t->have_dropped) {
		printf(" (not in otherData)");
	}
	printf("\n\nflows, by total run time:\n"
	    "  count   done failed cancel      total       mean        p50"
	    "        p99  pend mean   pend p50   pend p99  flow\n");
	for (size_t k = 0; k < t->nflows; k++) {
		const flow *f = &t->flows[fo[k]];
		if (f->count == 0)
			continue; /* named by a b only, never ended */
		printf("%7zu%7zu%7zu%7zu", f->count, f->by_status[ST_COMPLETED],
		    f->by_status[ST_FAILED], f->by_status[ST_CANCELLED]);
		put_dur(stdout, f->total, f->runs > 0);
		put_dur(stdout, f->mean, f->runs > 0);
		put_dur(stdout, f->p50, f->runs > 0);
		put_dur(stdout, f->p99, f->runs > 0);
		put_dur(stdout, f->pmean, f->npending > 0);
		put_dur(stdout, f->pp50, f->npending > 0);
		put_dur(stdout, f->pp99, f->npending > 0);
		fputs("  ", stdout);
		put_text(stdout, f->name, f->len);
		putchar('\n');
	}
	printf("(run times from the X slices, pending times from their "
	    "args.pending_us;\n p50 and p99 are nearest-rank percentiles)\n");
	if (unstarted > 0)
		printf("%zu execution%s never started (e without X): counted as "
		    "cancelled\n", unstarted, plural(unstarted));
	if (lost > 0)
		printf("%zu execution%s ended without an X slice in the file "
		    "(dropped): counted, no run time\n", lost, plural(lost));
	if (open > 0)
		printf("%zu execution%s began (b) but never ended in the file: "
		    "not counted\n", open, plural(open));

	/* The longest roots' critical paths. */
	uint32_t *roots = xmalloc((nroots + 1) * sizeof(uint32_t));
	size_t n = 0;
	for (size_t i = 0; i < t->nslices; i++)
		if (t->slices[i].parent == NONE32)
			roots[n++] = (uint32_t)i;
	g_sort_trace = t;
	qsort(roots, n, sizeof(uint32_t), cmp_root);
	size_t shown = roots_wanted < n ? roots_wanted : n;
	if (shown > 0)
		printf("\ncritical paths of the longest roots (%zu of %zu; each "
		    "step: the child that\nfinished last; share: its run time "
		    "over the root's):\n", shown, n);
	for (size_t k = 0; k < shown; k++) {
		const slice *s = &t->slices[roots[k]];
		char b[32];
		printf("\nroot %zu: ", k + 1);
		put_text(stdout, t->flows[s->flow].name, t->flows[s->flow].len);
		printf(", %s wall\n", fmt_us(b, s->dur));
		print_path(t, roots[k], (uint32_t)k + 1);
	}
	if (shown < n)
		printf("\n(%zu more root%s not shown: --roots N)\n", n - shown,
		    plural(n - shown));
	free(roots);
	free(fo);
}

/* ------------------------------------------------------ SVG output */

/* Text for XML: the five specials as entities; characters XML 1.0 does
 * not allow (controls but tab and newline, U+FFFE and U+FFFF) replaced by
 * U+FFFD.  The reader let only valid UTF-8 through. */
static void
put_xml(FILE *f, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		switch (c) {
		case '&': fputs("&amp;", f); break;
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '"': fputs("&quot;", f); break;
		case '\'': fputs("&apos;", f); break;
		default:
			if ((c < 0x20 && c != '\t' && c != '\n') ||
			    (c == 0xef && i + 2 < n &&
			    (unsigned char)s[i + 1] == 0xbf &&
			    (unsigned char)s[i + 2] >= 0xbe)) {
				fputs("\xef\xbf\xbd", f);
				if (c == 0xef)
					i += 2;
			} else {
				fputc(c, f);
			}
		}
	}
}

/* At most max characters (not bytes) of s, with "..." when cut. */
static void
put_xml_cut(FILE *f, const char *s, size_t n, size_t max)
{
	size_t chars = 0, i = 0;
	for (; i < n; i++) {
		if (((unsigned char)s[i] & 0xc0) != 0x80 && chars++ == max)
			break;
	}
	put_xml(f, s, i);
	if (i < n)
		fputs("...", f);
}

/* A stable colour per flow name: a hue from its hash, in a range of
 * saturation and lightness that keeps text and outlines visible. */
static void
flow_colour(flow *f)
{
	uint32_t h = fnv1a(f->name, f->len);
	/* FNV's low bits vary little between short names: mix them all
	 * (murmur3's finaliser) before taking a hue. */
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	h ^= h >> 16;
	double hue = (double)(h % 360);
	double s = 0.45 + (double)(h >> 9 & 31) / 100.0;
	double l = 0.55 + (double)(h >> 14 & 15) / 100.0;
	double c = (1 - fabs(2 * l - 1)) * s;
	double x = c * (1 - fabs(fmod(hue / 60.0, 2) - 1));
	double m = l - c / 2, rgb[3];
	int sector = (int)(hue / 60.0);
	static const int perm[6][3] = {
		{ 0, 1, 2 }, { 1, 0, 2 }, { 2, 0, 1 },
		{ 2, 1, 0 }, { 1, 2, 0 }, { 0, 2, 1 },
	};
	double part[3] = { c, x, 0 };
	for (int i = 0; i < 3; i++)
		rgb[i] = part[perm[sector][i]] + m;
	snprintf(f->colour, sizeof f->colour, "#%02x%02x%02x",
	    (int)lround(rgb[0] * 255), (int)lround(rgb[1] * 255),
	    (int)lround(rgb[2] * 255));
}

/* A slice of one lane, for sorting by start. */
typedef struct lane_slice {
	double ts, end;
	uint32_t idx;
} lane_slice;

static int
cmp_lane_slice(const void *a, const void *b)
{
	const lane_slice *x = a, *y = b;
	if (x->ts != y->ts)
		return x->ts < y->ts ? -1 : 1;
	if (x->end != y->end)
		return x->end > y->end ? -1 : 1; /* the enclosing one first */
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static int
cmp_lane(const void *a, const void *b)
{
	const lane *x = &g_sort_trace->lanes[*(const uint32_t *)a];
	const lane *y = &g_sort_trace->lanes[*(const uint32_t *)b];
	if (x->pid != y->pid)
		return x->pid < y->pid ? -1 : 1;
	return x->tid < y->tid ? -1 : x->tid > y->tid;
}

static int
cmp_double_desc(const void *a, const void *b)
{
	return cmp_double(b, a);
}

/* One thing to draw: a bar (one slice) or a mark (slices merged). */
typedef struct item {
	double x, w;
	uint32_t row;           /* in the whole picture */
	uint32_t lane_k;        /* its lane's place, top to bottom */
	uint32_t flow;          /* NONE32 for a mark of several flows */
	uint32_t what;          /* bar: the slice; mark: slices merged */
	bool mark, failed;
} item;

typedef struct svg_opts {
	int width, depth;
} svg_opts;

#define LEFT 170               /* room for lane labels */
#define RIGHT 20
#define TOP 48                 /* title, axis labels */
#define ROW_H 14
#define LANE_GAP 6

/* Tick step: 1, 2 or 5 times a power of ten, about ten ticks. */
static double
tick_step(double range)
{
	double raw = range / 10, mag = pow(10, floor(log10(raw)));
	double n = raw / mag;
	return (n < 1.5 ? 1 : n < 3.5 ? 2 : n < 7.5 ? 5 : 10) * mag;
}

/* A tick label: the unit chosen from the axis's end, the decimals from
 * the step, so that neighbouring labels always differ. */
static void
fmt_tick(char buf[32], double us, double step, double span)
{
	double scale = 1;
	const char *unit = "us";
	if (span >= 1e6) {
		scale = 1e6;
		unit = "s";
	} else if (span >= 1e3) {
		scale = 1e3;
		unit = "ms";
	} else if (span < 1) {
		scale = 1e-3;
		unit = "ns";
	}
	int dec = (int)ceil(-log10(step / scale) - 1e-9);
	if (dec < 0)
		dec = 0;
	if (dec > 9)
		dec = 9;
	snprintf(buf, 32, "%.*f%s", dec, us / scale, unit);
}

/* A lane's label: its thread_name (or tid), after the process_name (or
 * pid) when the file has several processes, as a merged one does: each
 * rank has its "worker 0". */
static void
put_lane_label(FILE *out, const trace *t, const lane *l)
{
	char num[48];
	const char *thread = l->label;
	size_t threadlen = l->labellen;
	if (thread == NULL) {
		threadlen = (size_t)snprintf(num, sizeof num, "tid %lld",
		    (long long)l->tid);
		thread = num;
	}
	if (t->nprocs <= 1) {
		put_xml_cut(out, thread, threadlen, LABEL_MAX);
		return;
	}
	uint32_t pi = find_proc(t, l->pid);
	const proc *p = pi != NONE32 ? &t->procs[pi] : NULL;
	char pnum[32];
	const char *pname = p != NULL ? p->label : NULL;
	size_t pnamelen = p != NULL ? p->labellen : 0;
	if (pname == NULL) {
		pnamelen = (size_t)snprintf(pnum, sizeof pnum, "pid %lld",
		    (long long)l->pid);
		pname = pnum;
	}
	/* Cut as one text: joined first. */
	char *s = xmalloc(pnamelen + 2 + threadlen);
	memcpy(s, pname, pnamelen);
	memcpy(s + pnamelen, ": ", 2);
	memcpy(s + pnamelen + 2, thread, threadlen);
	put_xml_cut(out, s, pnamelen + 2 + threadlen, LABEL_MAX_PROC);
	free(s);
}

static bool
write_svg(trace *t, const char *in_path, const char *out_path,
    const svg_opts *o)
{
	/* Opened first: a file that cannot be written leaves nothing to
	 * free. */
	FILE *out = fopen(out_path, "w");
	if (out == NULL) {
		fprintf(stderr, PROG ": %s: %s\n", out_path, strerror(errno));
		return false;
	}
	size_t unstarted, lost, open;
	count_unsliced(t, &unstarted, &lost, &open);
	const double plot_w = o->width - LEFT - RIGHT;
	const uint32_t cap = (uint32_t)o->depth;

	/* The time range of all slices. */
	double t0 = 0, t1 = 1;
	for (size_t i = 0; i < t->nslices; i++) {
		const slice *s = &t->slices[i];
		if (i == 0 || s->ts < t0)
			t0 = s->ts;
		if (i == 0 || s->ts + s->dur > t1)
			t1 = s->ts + s->dur;
	}
	if (t1 <= t0)
		t1 = t0 + 1;
	const double scale = plot_w / (t1 - t0);

	/* Lanes in pid, tid order; each one's slices by start. */
	uint32_t *lo = xmalloc((t->nlanes + 1) * sizeof(uint32_t));
	size_t *lstart = calloc(t->nlanes + 2, sizeof(size_t));
	lane_slice *ls = xmalloc((t->nslices + 1) * sizeof(lane_slice));
	if (lstart == NULL)
		out_of_memory();
	for (size_t i = 0; i < t->nlanes; i++)
		lo[i] = (uint32_t)i;
	g_sort_trace = t;
	qsort(lo, t->nlanes, sizeof(uint32_t), cmp_lane);
	for (size_t i = 0; i < t->nslices; i++)
		lstart[t->slices[i].lane + 1]++;
	for (size_t i = 0; i < t->nlanes; i++)
		lstart[i + 1] += lstart[i];
	for (size_t i = 0; i < t->nslices; i++) {
		const slice *s = &t->slices[i];
		lane_slice *d = &ls[lstart[s->lane]++];
		d->ts = s->ts;
		d->end = s->ts + s->dur;
		d->idx = (uint32_t)i;
	}
	/* lstart[l] is now where lane l + 1 begins; shift back. */
	memmove(lstart + 1, lstart, t->nlanes * sizeof(size_t));
	lstart[0] = 0;

	/* Depth on its thread: the number of slices still open at its
	 * start (the file promises they nest; any overlap just goes one
	 * row down). */
	uint32_t *rows = xmalloc((t->nlanes + 1) * sizeof(uint32_t));
	double *stack = NULL;
	size_t capstack = 0;
	for (size_t l = 0; l < t->nlanes; l++) {
		lane_slice *a = ls + lstart[l];
		size_t n = lstart[l + 1] - lstart[l], depth = 0, max = 0;
		qsort(a, n, sizeof(lane_slice), cmp_lane_slice);
		for (size_t i = 0; i < n; i++) {
			while (depth > 0 && stack[depth - 1] <= a[i].ts)
				depth--;
			t->slices[a[i].idx].depth = depth < NONE32 ?
			    (uint32_t)depth : NONE32;
			GROW(stack, capstack, depth + 1);
			stack[depth++] = a[i].end;
			if (depth > max)
				max = depth;
		}
		rows[l] = max == 0 ? 1 : max < cap ? (uint32_t)max : cap;
	}
	free(stack);

	/* The narrowest bar drawn: MIN_BAR_PX, or more when that would
	 * draw over MAX_BARS bars (the file's size stays bounded). */
	double min_px = MIN_BAR_PX;
	{
		double *w = xmalloc((t->nslices + 1) * sizeof(double));
		size_t n = 0;
		for (size_t i = 0; i < t->nslices; i++) {
			double px = t->slices[i].dur * scale;
			if (t->slices[i].depth < cap && px >= MIN_BAR_PX)
				w[n++] = px;
		}
		if (n > MAX_BARS) {
			qsort(w, n, sizeof(double), cmp_double_desc);
			min_px = nextafter(w[MAX_BARS], INFINITY);
		}
		free(w);
	}

	/* What to draw, lane by lane; slices too narrow merge into marks,
	 * one per row and run of neighbours less than `gap` apart: a pixel,
	 * or more when the rows could hold over MAX_MARKS marks: a row holds
	 * at most plot_w / gap + 1 of them, plus one per bar that splits a
	 * run, so the file stays within a few MB. */
	uint32_t nrows = 0;
	for (size_t l = 0; l < t->nlanes; l++)
		nrows += rows[l];
	const double gap = fmax(1, plot_w * nrows / MAX_MARKS);
	item *items = NULL, *open_marks = xmalloc(cap * sizeof(item));
	size_t nitems = 0, capitems = 0, nbars = 0, merged = 0, deep = 0;
	uint32_t *lane_row = xmalloc((t->nlanes + 1) * sizeof(uint32_t));
	uint32_t row0 = 0;
	for (size_t k = 0; k < t->nlanes; k++) {
		size_t l = lo[k];
		lane_row[l] = row0;
		for (uint32_t d = 0; d < cap; d++)
			open_marks[d].what = 0;
		for (size_t i = lstart[l]; i <= lstart[l + 1]; i++) {
			/* i == the end: flush the marks left open. */
			const slice *s = i < lstart[l + 1] ?
			    &t->slices[ls[i].idx] : NULL;
			double x = 0, w = 0;
			bool bar = false;
			if (s != NULL) {
				if (s->depth >= cap) {
					deep++;
					continue;
				}
				x = LEFT + (s->ts - t0) * scale;
				w = s->dur * scale;
				bar = w >= min_px;
			}
			/* Close the marks that this slice does not extend:
			 * all at the lane's end, its row's if it is a bar or
			 * starts over a pixel away. */
			for (uint32_t d = 0; d < cap; d++) {
				item *m = &open_marks[d];
				if (m->what == 0 || (s != NULL && (d != s->depth ||
				    (!bar && x <= m->x + m->w + gap))))
					continue;
				GROW(items, capitems, nitems + 1);
				items[nitems++] = *m;
				m->what = 0;
			}
			if (s == NULL)
				break;
			if (bar) {
				GROW(items, capitems, nitems + 1);
				items[nitems++] = (item){ x, w, row0 + s->depth,
				    (uint32_t)k, s->flow, ls[i].idx, false,
				    s->status == ST_FAILED };
				t->flows[s->flow].used = true;
				nbars++;
				continue;
			}
			merged++;
			item *m = &open_marks[s->depth];
			if (m->what == 0) {
				*m = (item){ x, w, row0 + s->depth, (uint32_t)k,
				    s->flow, 0, true, false };
			} else if (x + w > m->x + m->w) {
				m->w = x + w - m->x;
			}
			m->what++;
			m->failed |= s->status == ST_FAILED;
			if (m->flow != s->flow)
				m->flow = NONE32;
		}
		row0 += rows[l];
	}
	for (size_t i = 0; i < nitems; i++)
		if (items[i].mark && items[i].flow != NONE32)
			t->flows[items[i].flow].used = true;

	/* The legend: flows by total run time, the first LEGEND_MAX. */
	uint32_t *fo = sorted_flows(t);
	size_t nlegend = t->nflows < LEGEND_MAX ? t->nflows : LEGEND_MAX;
	for (size_t k = 0; k < t->nflows; k++) {
		flow *f = &t->flows[fo[k]];
		flow_colour(f);
		if (k < nlegend)
			f->used = true;
	}

	const int lanes_h = (int)row0 * ROW_H + (int)t->nlanes * LANE_GAP;
	const int legend_y = TOP + lanes_h + 24;
	/* The legend's title and entries, "and N more", the key of the
	 * marks, the line of what was not drawn. */
	const int height = legend_y + 16 * (int)nlegend +
	    (t->nflows > nlegend ? 16 : 0) + 22 + 20 + 12;
	fprintf(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	    "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
	    "height=\"%d\" viewBox=\"0 0 %d %d\">\n", o->width, height,
	    o->width, height);
	fputs("<defs><pattern id=\"hatch\" width=\"4\" height=\"4\" "
	    "patternUnits=\"userSpaceOnUse\" patternTransform=\"rotate(45)\">"
	    "<rect width=\"2\" height=\"4\" fill=\"#fff\" fill-opacity=\".6\"/>"
	    "</pattern></defs>\n<style>\n"
	    "text{font:11px sans-serif;fill:#222}\n"
	    ".g{stroke:#ddd}.a{stroke:#888}.l{fill:#f4f4f4}\n"
	    ".f{stroke:#d00000;stroke-width:1.5}\n"
	    ".c{stroke:#444;stroke-dasharray:3 2}.h{fill:url(#hatch)}\n"
	    ".m{opacity:.6}.x{fill:#999}\n", out);
	for (size_t i = 0; i < t->nflows; i++)
		if (t->flows[i].used)
			fprintf(out, ".k%zu{fill:%s}\n", i, t->flows[i].colour);
	fputs("</style>\n<rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>\n",
	    out);

	char b0[32], b1[32];
	fputs("<text x=\"10\" y=\"16\" style=\"font-size:13px\">", out);
	put_xml(out, in_path, strlen(in_path));
	fprintf(out, ": %zu executions on %zu threads, %s to %s; dropped "
	    "events %.0f</text>\n", t->nslices, t->nlanes, fmt_us(b0, t0),
	    fmt_us(b1, t1), t->dropped);

	/* Lanes: background, label. */
	for (size_t k = 0; k < t->nlanes; k++) {
		const lane *l = &t->lanes[lo[k]];
		int y = TOP + (int)lane_row[lo[k]] * ROW_H + (int)k * LANE_GAP;
		if (k % 2 == 0)
			fprintf(out, "<rect class=\"l\" x=\"0\" y=\"%d\" "
			    "width=\"%d\" height=\"%d\"/>\n", y - LANE_GAP / 2,
			    o->width, (int)rows[lo[k]] * ROW_H + LANE_GAP);
		fprintf(out, "<text x=\"6\" y=\"%d\">", y + ROW_H - 3);
		put_lane_label(out, t, l);
		fputs("</text>\n", out);
	}

	/* The time axis: ticks and grid lines over all the lanes. */
	/* Each tick computed from its number: adding the step up would
	 * stall where it is below the precision of t0. */
	double step = tick_step(t1 - t0), first = ceil(t0 / step);
	fprintf(out, "<line class=\"a\" x1=\"%d\" y1=\"%d\" x2=\"%d\" "
	    "y2=\"%d\"/>\n", LEFT, TOP - 4, o->width - RIGHT, TOP - 4);
	for (int k = 0; k <= 20; k++) {
		double v = (first + k) * step;
		if (v > t1 + step * 1e-9)
			break;
		double x = LEFT + (v - t0) * scale;
		fmt_tick(b0, v, step, fmax(fabs(t0), fabs(t1)));
		fprintf(out, "<line class=\"g\" x1=\"%.1f\" y1=\"%d\" "
		    "x2=\"%.1f\" y2=\"%d\"/><text x=\"%.1f\" y=\"%d\" "
		    "text-anchor=\"middle\">%s</text>\n", x, TOP - 8, x,
		    TOP + lanes_h, x, TOP - 12, b0);
	}

	/* Bars and marks; each with a tooltip. */
	for (size_t i = 0; i < nitems; i++) {
		const item *it = &items[i];
		/* Rows count down the picture; a gap after each lane. */
		int y = TOP + (int)it->row * ROW_H + (int)it->lane_k * LANE_GAP;
		double w = it->mark && it->w < 1 ? 1 : it->w;
		if (it->mark) {
			if (it->flow != NONE32)
				fprintf(out, "<rect class=\"m k%u", it->flow);
			else
				fputs("<rect class=\"m x", out);
			fprintf(out, "%s\" x=\"%.1f\" y=\"%d\" width=\"%.1f\" "
			    "height=\"%d\"><title>%u executions, each narrower "
			    "than %.2gpx", it->failed ? " f" : "", it->x, y, w,
			    ROW_H - 1, it->what, min_px);
			if (it->flow != NONE32) {
				fputs(": ", out);
				put_xml_cut(out, t->flows[it->flow].name,
				    t->flows[it->flow].len, TITLE_MAX);
			}
			fputs("</title></rect>\n", out);
			continue;
		}
		const slice *s = &t->slices[it->what];
		const exec *e = &t->execs[s->exec];
		const char *cls = s->status == ST_FAILED ? " f" :
		    s->status == ST_CANCELLED ? " c" : "";
		fprintf(out, "<rect class=\"k%u%s\" x=\"%.1f\" y=\"%d\" "
		    "width=\"%.1f\" height=\"%d\"><title>", s->flow, cls, it->x,
		    y, w, ROW_H - 1);
		put_xml_cut(out, t->flows[s->flow].name, t->flows[s->flow].len,
		    TITLE_MAX);
		fprintf(out, " %s %s", fmt_us(b0, s->dur),
		    status_names[s->status]);
		if (!isnan(s->pending))
			fprintf(out, ", pending %s", fmt_us(b1, s->pending));
		fputs(", id ", out);
		put_xml_cut(out, e->id, e->idlen, TITLE_MAX);
		fputs("</title></rect>\n", out);
		if (s->status == ST_CANCELLED)
			fprintf(out, "<rect class=\"h\" x=\"%.1f\" y=\"%d\" "
			    "width=\"%.1f\" height=\"%d\"/>\n", it->x, y, w,
			    ROW_H - 1);
	}
	/* The legend, then what was not drawn. */
	int y = legend_y;
	fprintf(out, "<text x=\"10\" y=\"%d\" style=\"font-weight:bold\">"
	    "flows, by total run time</text>\n", y);
	for (size_t k = 0; k < nlegend; k++) {
		const flow *f = &t->flows[fo[k]];
		y += 16;
		fprintf(out, "<rect class=\"k%u\" x=\"10\" y=\"%d\" width=\"12\" "
		    "height=\"12\"/><text x=\"28\" y=\"%d\">", fo[k], y - 10,
		    y);
		put_xml_cut(out, f->name, f->len, TITLE_MAX);
		fprintf(out, " (%zu, %s)</text>\n", f->count,
		    fmt_us(b0, f->total));
	}
	if (t->nflows > nlegend) {
		y += 16;
		fprintf(out, "<text x=\"10\" y=\"%d\">and %zu more flows</text>\n",
		    y, t->nflows - nlegend);
	}
	y += 22;
	fprintf(out, "<rect class=\"x f\" x=\"10\" y=\"%d\" width=\"12\" "
	    "height=\"12\"/><text x=\"28\" y=\"%d\">failed</text>\n"
	    "<rect class=\"x c\" x=\"90\" y=\"%d\" width=\"12\" height=\"12\"/>"
	    "<rect class=\"h\" x=\"90\" y=\"%d\" width=\"12\" height=\"12\"/>"
	    "<text x=\"108\" y=\"%d\">cancelled</text>\n"
	    "<rect class=\"x m\" x=\"190\" y=\"%d\" width=\"12\" "
	    "height=\"12\"/><text x=\"208\" y=\"%d\">narrow executions "
	    "merged</text>\n", y - 10, y, y - 10, y - 10, y, y - 10, y);
	y += 20;
	fprintf(out, "<text x=\"10\" y=\"%d\">%zu bars; %zu executions "
	    "narrower than %.2g px merged into %zu marks; %zu deeper than %d "
	    "levels not drawn; %zu never started (not on any thread)</text>\n",
	    y, nbars, merged, min_px, nitems - nbars, deep, o->depth,
	    unstarted);
	fputs("</svg>\n", out);
	bool ok = ferror(out) == 0;
	if (fclose(out) != 0 || !ok) {
		fprintf(stderr, PROG ": %s: write error\n", out_path);
		ok = false;
	} else {
		printf("%s: %zu bars, %zu narrow executions merged into %zu "
		    "marks, %zu deeper than %d levels not drawn\n", out_path,
		    nbars, merged, nitems - nbars, deep, o->depth);
	}
	free(items);
	free(open_marks);
	free(lane_row);
	free(rows);
	free(ls);
	free(lstart);
	free(lo);
	free(fo);
	return ok;
}

/* ------------------------------------------------------- merging */

/*
 * --merge: the files of one job (a file per process; with libpumped-mpi,
 * one per rank) joined into one trace that a viewer shows on one time
 * axis.  Each file's ts count from its own origin, on its own clock; its
 * otherData says where that origin lies on the reference clock (rank
 * 0's): origin_unix_ns - clock_offset_ns.  The earliest of these is the
 * merged file's origin, and every ts moves by its file's distance from
 * it.
 */

/* One input. */
typedef struct mfile {
	const char *path;
	char *buf;              /* the whole file, kept for the second pass */
	size_t len;
	size_t events;          /* elements of traceEvents */
	double dropped;         /* otherData.dropped_events, 0 if absent */
	bool have_origin, have_os_pid;
	int64_t origin, offset, os_pid; /* otherData; offset 0 if absent */
	int64_t base;           /* origin - offset: on the reference clock */
	int64_t shift_ns;       /* base - T0, added to every ts */
	const char *producer, *version;
	size_t producerlen, versionlen;
	uint32_t first_pair, end_pair; /* its (file, pid) pairs */
} mfile;

/* The first X slice of each execution id, where a link across files can
 * start or end; its numbers as the file spells them. */
typedef struct xrec {
	uint32_t file, exec;
	uint32_t parent;        /* exec of args.parent, NONE32 if none */
	uint32_t pair;          /* its (file, pid) */
	size_t pos;             /* where the event starts in its file */
	bytes ts, dur, tid;
	uint8_t link;
} xrec;

enum {
	LINK_NONE,
	LINK_MOVE,              /* its parent is in another file: its s moves */
	LINK_ADD                /* the same, and it has no s: one is added */
};

typedef struct merge {
	mfile *files;
	size_t nfiles;
	uint32_t cur;           /* the file being read */
	/* The tables of a trace, borrowed: execs are the ids of all the
	 * files; lanes the (file, pid) pairs, the file in `pid` and the
	 * pid in `tid`; procs the set of pids taken. */
	trace t;
	int64_t *newpid;        /* per pair: the pid written */
	size_t capnewpid;
	uint32_t *owner;        /* per proc: the file that has that pid */
	size_t capowner;
	xrec *xs;
	size_t nxs, capxs;
	const char *unit;       /* the first displayTimeUnit, NULL if none */
	size_t unitlen;
	bool have_t0;
	int64_t t0;             /* the merged origin: the earliest base */
	size_t links;
	FILE *out;
	bool first;             /* no event written yet */
} merge;

/* An integer member exactly, from its text: origin_unix_ns is beyond the
 * 2^53 that a double holds exactly.  Other spellings (1e3, 12.0) are
 * taken when a double holds them exactly. */
static bool
member_i64(const reader *r, size_t obj, const char *key, int64_t *v)
{
	size_t m = member(r, obj, key);
	if (m == NONE || r->nodes[m].type != J_NUM)
		return false;
	const char *s = r->nodes[m].str;
	size_t n = r->nodes[m].len, i = s[0] == '-';
	bool neg = i != 0;
	uint64_t acc = 0, lim = (uint64_t)INT64_MAX + neg;
	for (; i < n && is_digit(s[i]); i++) {
		unsigned d = (unsigned)(s[i] - '0');
		if (acc > (lim - d) / 10)
			return false;
		acc = acc * 10 + d;
	}
	if (i < n)
		return member_int(r, obj, key, v);
	if (!neg)
		*v = (int64_t)acc;
	else /* INT64_MIN has no positive twin: negated one less */
		*v = acc == 0 ? 0 : -(int64_t)(acc - 1) - 1;
	return true;
}

/* ---- times */

/*
 * A ts after the shift.  Exact, in integer ns, when its text is a decimal
 * with at most three fractional digits (trailing zeros aside) and no
 * exponent, as libpumped writes them: then 1614.12 moved by 179,980 ns
 * is 1794.1, not 1794.1000000000001.  Any other spelling goes through a
 * double.
 */
typedef struct tval {
	bool exact;
	int64_t ns;             /* exact */
	double us;              /* always, for comparisons */
} tval;

static bool
ns_of(bytes b, int64_t *out)
{
	const char *s = b.p;
	size_t i = 0, digits = 0;
	bool neg = b.n > 0 && s[0] == '-';
	int64_t v = 0, scale = 100;
	if (neg)
		i++;
	/* 15 digits: below MAX_US, so that ts, shift and dur, each under
	 * 10^18 ns, add up within an int64. */
	for (; i < b.n && is_digit(s[i]); i++) {
		if (++digits > 15)
			return false;
		v = v * 10 + (s[i] - '0');
	}
	v *= 1000;
	if (i < b.n && s[i] == '.') {
		for (i++; i < b.n && is_digit(s[i]); i++) {
			if (scale == 0) {
				if (s[i] != '0')
					return false; /* below a ns */
				continue;
			}
			v += (s[i] - '0') * scale;
			scale /= 10;
		}
	}
	if (i != b.n)
		return false; /* an exponent */
	*out = neg ? -v : v;
	return true;
}

/* strtod on the file itself: the reader checked the number and that
 * strtod stops where it ends. */
static double
us_of(bytes b)
{
	return strtod(b.p, NULL);
}

static tval
tv_shift(bytes b, int64_t shift_ns)
{
	tval t = { false, 0, 0 };
	int64_t ns;
	if (ns_of(b, &ns) && shift_ns <= (int64_t)(MAX_US * 1000)) {
		t.exact = true;
		t.ns = ns + shift_ns;
		t.us = (double)t.ns / 1e3;
	} else {
		t.us = us_of(b) + (double)shift_ns / 1e3;
	}
	return t;
}

static tval
tv_add(tval t, bytes dur)
{
	int64_t ns;
	if (t.exact && ns_of(dur, &ns)) {
		t.ns += ns;
		t.us = (double)t.ns / 1e3;
	} else {
		t.exact = false;
		t.us += us_of(dur);
	}
	return t;
}

static int
tv_cmp(tval a, tval b)
{
	if (a.exact && b.exact)
		return a.ns < b.ns ? -1 : a.ns > b.ns;
	return a.us < b.us ? -1 : a.us > b.us;
}

/* t moved into [lo, hi]. */
static tval
tv_clamp(tval t, tval lo, tval hi)
{
	if (tv_cmp(t, lo) < 0)
		return lo;
	if (tv_cmp(t, hi) > 0)
		return hi;
	return t;
}

/* A double as JSON that reads back as the same double: an integer as
 * one, otherwise the shortest of 15 to 17 significant digits that does. */
static void
put_double(FILE *f, double v)
{
	char b[40];
	if (v == floor(v) && fabs(v) < 9007199254740992.0) {
		fprintf(f, "%.0f", v);
		return;
	}
	for (int prec = 15; prec <= 17; prec++) {
		snprintf(b, sizeof b, "%.*g", prec, v);
		if (strtod(b, NULL) == v)
			break;
	}
	fputs(b, f);
}

static void
put_tval(FILE *f, tval t)
{
	if (!t.exact) {
		put_double(f, t.us);
		return;
	}
	uint64_t a = t.ns < 0 ? 0 - (uint64_t)t.ns : (uint64_t)t.ns;
	unsigned frac = (unsigned)(a % 1000);
	fprintf(f, "%s%llu", t.ns < 0 ? "-" : "",
	    (unsigned long long)(a / 1000));
	if (frac != 0) {
		char d[8];
		int n = snprintf(d, sizeof d, "%03u", frac);
		while (n > 0 && d[n - 1] == '0')
			d[--n] = '\0';
		fprintf(f, ".%s", d);
	}
}

/* ---- JSON out */

/* A string, escaped as RFC 8259 asks: quote, backslash and control
 * characters.  The reader let only valid UTF-8 through; a file name may
 * hold any bytes, so invalid sequences become U+FFFD. */
static void
put_json_str(FILE *f, const char *s, size_t n)
{
	const unsigned char *b = (const unsigned char *)s;
	putc('"', f);
	for (size_t i = 0; i < n;) {
		unsigned c = b[i];
		size_t len;
		switch (c) {
		case '"': fputs("\\\"", f); break;
		case '\\': fputs("\\\\", f); break;
		case '\b': fputs("\\b", f); break;
		case '\f': fputs("\\f", f); break;
		case '\n': fputs("\\n", f); break;
		case '\r': fputs("\\r", f); break;
		case '\t': fputs("\\t", f); break;
		default:
			if (c < 0x20) {
				fprintf(f, "\\u%04x", c);
			} else if ((len = utf8_seq(b + i, n - i)) == 0) {
				fputs("\xef\xbf\xbd", f);
			} else {
				fwrite(b + i, 1, len, f);
				i += len;
				continue;
			}
		}
		i++;
	}
	putc('"', f);
}

/* A value of the reader's tree as it came: numbers as their text. */
static void
put_json(FILE *f, const reader *r, size_t v)
{
	const jnode *n = &r->nodes[v];
	switch (n->type) {
	case J_NULL: fputs("null", f); break;
	case J_FALSE: fputs("false", f); break;
	case J_TRUE: fputs("true", f); break;
	case J_NUM: fwrite(n->str, 1, n->len, f); break;
	case J_STR: put_json_str(f, n->str, n->len); break;
	case J_ARR:
	case J_OBJ:
		putc(n->type == J_OBJ ? '{' : '[', f);
		for (size_t i = n->first; i != NONE; i = r->nodes[i].next) {
			if (i != n->first)
				putc(',', f);
			if (n->type == J_OBJ) {
				put_json_str(f, r->nodes[i].key,
				    r->nodes[i].keylen);
				putc(':', f);
			}
			put_json(f, r, i); /* depth: at most MAX_NESTING */
		}
		putc(n->type == J_OBJ ? '}' : ']', f);
		break;
	}
}

/* ---- the first pass: what each file holds */

/* The event's (file, pid) pair: a missing pid is 0, as for the summary;
 * NONE32 for a pid that is no integer (written as it is). */
static uint32_t
merge_pair(merge *m, const reader *r, size_t ev)
{
	int64_t pid = 0;
	if (member(r, ev, "pid") != NONE && !member_int(r, ev, "pid", &pid))
		return NONE32;
	size_t had = m->t.nlanes;
	uint32_t i = intern_lane(&m->t, m->cur, pid);
	if (m->t.nlanes > had) {
		GROW(m->newpid, m->capnewpid, (size_t)i + 1);
		m->newpid[i] = pid;
		had = m->t.nprocs;
		uint32_t p = intern_proc(&m->t, pid);
		if (m->t.nprocs > had) {
			GROW(m->owner, m->capowner, (size_t)p + 1);
			m->owner[p] = m->cur;
		}
	}
	return i;
}

/* Is it the s arrow to a child ("cat" "child")?  Its id then. */
static bool
child_arrow(const reader *r, size_t ev, const char *ph, size_t phlen,
    bytes *id)
{
	const char *cat;
	size_t catlen;
	return key_is(ph, phlen, "s") &&
	    member_str(r, ev, "cat", &cat, &catlen) &&
	    key_is(cat, catlen, "child") &&
	    member_str(r, ev, "id", &id->p, &id->n);
}

/* The xrec of this id, NONE32 if the id has no X (or is unknown). */
static uint32_t
xrec_of(merge *m, bytes id)
{
	bytes k = id;
	slot *s = table_find(&m->t.exec_tab, fnv1a(id.p, id.n), same_exec,
	    &m->t, &k);
	if (s == NULL || s->idx1 == 0)
		return NONE32;
	return m->t.execs[s->idx1 - 1].slice;
}

static void
merge_scan(void *ctx, const reader *r, size_t ev, size_t pos)
{
	merge *m = ctx;
	const char *ph;
	size_t phlen, args, par;
	bytes id;
	double ts, dur;
	int64_t tid;
	m->files[m->cur].events++;
	if (r->nodes[ev].type != J_OBJ)
		return; /* copied as it is */
	uint32_t pair = merge_pair(m, r, ev);
	if (!member_str(r, ev, "ph", &ph, &phlen))
		return;
	if (child_arrow(r, ev, ph, phlen, &id)) {
		/* Interned first: it may move m->t.execs. */
		uint32_t ei = intern_exec(&m->t, id.p, id.n);
		m->t.execs[ei].seen_s = true;
		return;
	}
	/* An X that can be a parent or a child across files: one with the
	 * fields the summary also needs, the first of its id. */
	args = member(r, ev, "args");
	if (!key_is(ph, phlen, "X") || pair == NONE32 ||
	    !member_str(r, args, "id", &id.p, &id.n) ||
	    !member_num(r, ev, "ts", &ts) || !in_range(ts) ||
	    !member_num(r, ev, "dur", &dur) || !in_range(dur) || dur < 0 ||
	    !member_int(r, ev, "tid", &tid))
		return;
	uint32_t e = intern_exec(&m->t, id.p, id.n);
	if (m->t.execs[e].slice != NONE32)
		return;
	par = member(r, args, "parent");
	uint32_t parent = par != NONE && r->nodes[par].type == J_STR ?
	    intern_exec(&m->t, r->nodes[par].str, r->nodes[par].len) :
	    NONE32;
	uint32_t i = next_index(m->nxs);
	GROW(m->xs, m->capxs, m->nxs + 1);
	xrec *x = &m->xs[m->nxs++];
	size_t nts = member(r, ev, "ts"), ndur = member(r, ev, "dur"),
	    ntid = member(r, ev, "tid");
	/* Numbers are never decoded: their text lies in the file, which
	 * stays in memory. */
	*x = (xrec){ m->cur, e, parent, pair, pos,
	    { r->nodes[nts].str, r->nodes[nts].len },
	    { r->nodes[ndur].str, r->nodes[ndur].len },
	    { r->nodes[ntid].str, r->nodes[ntid].len }, LINK_NONE };
	m->t.execs[e].slice = i;
}

static void
merge_member(void *ctx, const reader *r, const char *key, size_t keylen,
    size_t v)
{
	merge *m = ctx;
	mfile *f = &m->files[m->cur];
	const char *s;
	size_t n;
	double d;
	if (key_is(key, keylen, "displayTimeUnit")) {
		if (m->unit == NULL && r->nodes[v].type == J_STR) {
			m->unit = keep_str(&m->t, r->nodes[v].str,
			    r->nodes[v].len);
			m->unitlen = r->nodes[v].len;
		}
		return;
	}
	if (!key_is(key, keylen, "otherData"))
		return;
	if (member_num(r, v, "dropped_events", &d) && d >= 0)
		f->dropped = d;
	if (member_str(r, v, "producer", &s, &n)) {
		f->producer = keep_str(&m->t, s, n);
		f->producerlen = n;
	}
	if (member_str(r, v, "version", &s, &n)) {
		f->version = keep_str(&m->t, s, n);
		f->versionlen = n;
	}
	f->have_origin = member_i64(r, v, "origin_unix_ns", &f->origin);
	if (!member_i64(r, v, "clock_offset_ns", &f->offset))
		f->offset = 0;
	f->have_os_pid = member_i64(r, v, "os_pid", &f->os_pid);
}

/* ---- between the passes: shifts, pids, links */

static bool
merge_plan(merge *m)
{
	/* The bases, and the earliest of them. */
	for (size_t i = 0; i < m->nfiles; i++) {
		mfile *f = &m->files[i];
		if (f->have_origin && ((f->offset > 0 &&
		    f->origin < INT64_MIN + f->offset) || (f->offset < 0 &&
		    f->origin > INT64_MAX + f->offset))) {
			fprintf(stderr, PROG ": warning: %s: origin_unix_ns "
			    "minus clock_offset_ns overflows: taken as "
			    "absent\n", f->path);
			f->have_origin = false;
		}
		if (!f->have_origin)
			continue;
		f->base = f->origin - f->offset;
		if (!m->have_t0 || f->base < m->t0)
			m->t0 = f->base;
		m->have_t0 = true;
	}
	for (size_t i = 0; i < m->nfiles; i++) {
		mfile *f = &m->files[i];
		if (!f->have_origin) {
			/* An older libpumped: nothing to align it with. */
			fprintf(stderr, PROG ": warning: %s: no "
			    "otherData.origin_unix_ns: its times are taken "
			    "as they are, from the merged origin\n", f->path);
			f->base = m->t0;
		}
		/* Unsigned: two int64 may be 2^64 apart.  31 years, the
		 * reader's bound on a ts, is far beyond any job. */
		uint64_t d = (uint64_t)f->base - (uint64_t)m->t0;
		if (d > (uint64_t)(MAX_US * 1000)) {
			fprintf(stderr, PROG ": %s: its origin is %.0f s "
			    "from the earliest: not one job\n", f->path,
			    (double)d / 1e9);
			return false;
		}
		f->shift_ns = (int64_t)d;
	}

	/* pids: the first file that has one keeps it; a later one gets its
	 * os_pid when no file has that, else a number above them all. */
	int64_t fresh = 0;
	for (size_t p = 0; p < m->t.nprocs; p++)
		if (m->t.procs[p].pid >= fresh)
			fresh = m->t.procs[p].pid + 1;
	for (size_t k = 0; k < m->t.nlanes; k++) {
		uint32_t file = (uint32_t)m->t.lanes[k].pid;
		int64_t pid = m->t.lanes[k].tid, to;
		if (m->owner[find_proc(&m->t, pid)] == file)
			continue;
		const mfile *f = &m->files[file];
		if (f->have_os_pid && find_proc(&m->t, f->os_pid) == NONE32) {
			to = f->os_pid;
		} else {
			while (find_proc(&m->t, fresh) != NONE32)
				fresh++;
			to = fresh;
		}
		uint32_t p = intern_proc(&m->t, to);
		GROW(m->owner, m->capowner, (size_t)p + 1);
		m->owner[p] = file;
		m->newpid[k] = to;
		fprintf(stderr, PROG ": note: %s uses pid %lld, as %s does: its "
		    "events get pid %lld\n", f->path, (long long)pid,
		    m->files[m->owner[find_proc(&m->t, pid)]].path,
		    (long long)to);
	}

	/* Links: a child whose parent's X is in another file. */
	for (size_t i = 0; i < m->nxs; i++) {
		xrec *c = &m->xs[i];
		if (c->parent == NONE32)
			continue;
		uint32_t p = m->t.execs[c->parent].slice;
		if (p == NONE32 || m->xs[p].file == c->file)
			continue;
		c->link = m->t.execs[c->exec].seen_s ? LINK_MOVE : LINK_ADD;
		m->links++;
	}
	return true;
}

/* ---- the second pass: writing */

static void
put_i64(FILE *f, int64_t v)
{
	fprintf(f, "%lld", (long long)v);
}

/* The s arrow of child c, on its parent p: p's process and thread, at
 * its own time clamped into p's slice, so that a viewer binds it there
 * and draws the arrow from the proxy to the remote execution. */
static tval
arrow_time(const merge *m, const xrec *p, bool have, tval t)
{
	tval lo = tv_shift(p->ts, m->files[p->file].shift_ns);
	tval hi = tv_add(lo, p->dur);
	return have ? tv_clamp(t, lo, hi) : lo;
}

static void
merge_write(void *ctx, const reader *r, size_t ev, size_t pos)
{
	merge *m = ctx;
	const mfile *f = &m->files[m->cur];
	FILE *out = m->out;
	const char *ph = NULL;
	size_t phlen = 0;
	bytes id;
	if (!m->first)
		fputs(",\n", out);
	m->first = false;
	if (r->nodes[ev].type != J_OBJ) {
		put_json(out, r, ev);
		return;
	}
	uint32_t pair = merge_pair(m, r, ev);
	bool renamed = pair != NONE32 &&
	    m->newpid[pair] != m->t.lanes[pair].tid;
	const xrec *p = NULL;   /* an s that moves: onto this parent */
	const xrec *add = NULL; /* an X whose s is added after it */
	member_str(r, ev, "ph", &ph, &phlen);
	if (ph != NULL && child_arrow(r, ev, ph, phlen, &id)) {
		uint32_t x = xrec_of(m, id);
		if (x != NONE32 && m->xs[x].link != LINK_NONE)
			p = &m->xs[m->t.execs[m->xs[x].parent].slice];
	} else if (ph != NULL && key_is(ph, phlen, "X") &&
	    member_str(r, member(r, ev, "args"), "id", &id.p, &id.n)) {
		uint32_t x = xrec_of(m, id);
		if (x != NONE32 && m->xs[x].file == m->cur &&
		    m->xs[x].pos == pos && m->xs[x].link == LINK_ADD)
			add = &m->xs[x];
	}

	bool have_pid = false, have_tid = false, have_ts = false;
	const jnode *o = &r->nodes[ev];
	putc('{', out);
	for (size_t i = o->first; i != NONE; i = r->nodes[i].next) {
		const jnode *n = &r->nodes[i];
		if (i != o->first)
			putc(',', out);
		put_json_str(out, n->key, n->keylen);
		putc(':', out);
		if (key_is(n->key, n->keylen, "ts") && n->type == J_NUM &&
		    (p != NULL || f->shift_ns != 0)) {
			tval t = tv_shift((bytes){ n->str, n->len },
			    f->shift_ns);
			have_ts = true;
			put_tval(out, p != NULL ? arrow_time(m, p, true, t) : t);
		} else if (key_is(n->key, n->keylen, "pid") &&
		    (p != NULL || renamed)) {
			have_pid = true;
			put_i64(out, m->newpid[p != NULL ? p->pair : pair]);
		} else if (key_is(n->key, n->keylen, "tid") && p != NULL) {
			have_tid = true;
			fwrite(p->tid.p, 1, p->tid.n, out);
		} else {
			/* Unshifted (the earliest file): as it was spelled. */
			have_ts |= key_is(n->key, n->keylen, "ts");
			put_json(out, r, i);
		}
	}
	/* What the event lacked: a missing pid is 0, which may have been
	 * renamed; an arrow needs all three to bind to the parent. */
	const char *sep = o->first != NONE ? "," : "";
	if (!have_pid && (p != NULL || renamed)) {
		fprintf(out, "%s\"pid\":", sep);
		put_i64(out, m->newpid[p != NULL ? p->pair : pair]);
		sep = ",";
	}
	if (p != NULL && !have_tid) {
		fprintf(out, "%s\"tid\":", sep);
		fwrite(p->tid.p, 1, p->tid.n, out);
		sep = ",";
	}
	if (p != NULL && !have_ts) {
		fprintf(out, "%s\"ts\":", sep);
		put_tval(out, arrow_time(m, p, false, (tval){ false, 0, 0 }));
	}
	putc('}', out);

	if (add != NULL) {
		/* Its arrow was dropped (or never written): one from its
		 * parent, at its start clamped into the parent's slice. */
		const xrec *q = &m->xs[m->t.execs[add->parent].slice];
		const exec *e = &m->t.execs[add->exec];
		fputs(",\n{\"ph\":\"s\",\"name\":\"child\",\"cat\":\"child\","
		    "\"id\":", out);
		put_json_str(out, e->id, e->idlen);
		fputs(",\"ts\":", out);
		put_tval(out, arrow_time(m, q, true,
		    tv_shift(add->ts, f->shift_ns)));
		fputs(",\"pid\":", out);
		put_i64(out, m->newpid[q->pair]);
		fputs(",\"tid\":", out);
		fwrite(q->tid.p, 1, q->tid.n, out);
		fputs(",\"args\":{\"added_by\":\"pumped-trace --merge\"}}",
		    out);
	}
}

static void
put_other_data(merge *m)
{
	FILE *out = m->out;
	double dropped = 0;
	for (size_t i = 0; i < m->nfiles; i++)
		dropped += m->files[i].dropped;
	fprintf(out, "\"otherData\":{\"producer\":\"pumped-trace --merge\","
	    "\"files\":%zu,\"dropped_events\":", m->nfiles);
	put_double(out, dropped);
	/* The merged file is on the reference clock: merged again, with
	 * another job's file say, it aligns as any other. */
	if (m->have_t0) {
		fputs(",\"origin_unix_ns\":", out);
		put_i64(out, m->t0);
		fputs(",\"clock_offset_ns\":0", out);
	}
	fprintf(out, ",\"cross_process_links\":%zu,\"inputs\":[", m->links);
	for (size_t i = 0; i < m->nfiles; i++) {
		const mfile *f = &m->files[i];
		fputs(i > 0 ? ",\n  {\"file\":" : "\n  {\"file\":", out);
		put_json_str(out, f->path, strlen(f->path));
		if (f->producer != NULL) {
			fputs(",\"producer\":", out);
			put_json_str(out, f->producer, f->producerlen);
		}
		if (f->version != NULL) {
			fputs(",\"version\":", out);
			put_json_str(out, f->version, f->versionlen);
		}
		if (f->have_os_pid) {
			fputs(",\"os_pid\":", out);
			put_i64(out, f->os_pid);
		}
		if (f->have_origin) {
			fputs(",\"origin_unix_ns\":", out);
			put_i64(out, f->origin);
			fputs(",\"clock_offset_ns\":", out);
			put_i64(out, f->offset);
		}
		fputs(",\"shift_ns\":", out);
		put_i64(out, f->shift_ns);
		fprintf(out, ",\"events\":%zu,\"dropped_events\":", f->events);
		put_double(out, f->dropped);
		/* Its pids, as [in the file, in the merge]. */
		fputs(",\"pids\":[", out);
		for (uint32_t k = f->first_pair; k < f->end_pair; k++) {
			fprintf(out, "%s[", k > f->first_pair ? "," : "");
			put_i64(out, m->t.lanes[k].tid);
			putc(',', out);
			put_i64(out, m->newpid[k]);
			putc(']', out);
		}
		fputs("]}", out);
	}
	fputs("]}", out);
}

/* Where the merge goes: stdout for "-"; an OUT that exists and is no
 * regular file (a link, a FIFO, a device) is written through, in place,
 * as the library writes its traces; otherwise a new file beside OUT,
 * renamed over it when complete, so that a failed write leaves OUT as it
 * was.  *tmp: that file's name, to free, NULL when writing in place. */
static FILE *
open_output(const char *path, char **tmp)
{
	struct stat st;
	*tmp = NULL;
	if (strcmp(path, "-") == 0)
		return stdout;
	if (lstat(path, &st) == 0 && !S_ISREG(st.st_mode))
		return fopen(path, "w");
	size_t n = strlen(path) + 32;
	char *name = xmalloc(n);
	for (int k = 0; k < 1000; k++) {
		snprintf(name, n, "%s.merge-%d.tmp", path, k);
		/* "x": never over a file that is there (C11). */
		FILE *f = fopen(name, "wx");
		if (f != NULL) {
			*tmp = name;
			return f;
		}
		if (errno != EEXIST)
			break;
	}
	free(name);
	return NULL;
}

static void
merge_free(merge *m)
{
	for (size_t i = 0; i < m->nfiles; i++)
		free(m->files[i].buf);
	free(m->files);
	free(m->newpid);
	free(m->owner);
	free(m->xs);
	trace_free(&m->t);
}

static int
run_merge(const char *out_path, char **paths, size_t npaths)
{
	merge m;
	memset(&m, 0, sizeof m);
	m.files = calloc(npaths, sizeof(mfile));
	if (m.files == NULL)
		out_of_memory();

	/* The first pass: every input read and checked before anything is
	 * written. */
	for (size_t i = 0; i < npaths; i++) {
		mfile *f = &m.files[m.nfiles++];
		reader r = { .path = paths[i] };
		f->path = paths[i];
		f->buf = read_input(paths[i], &f->len);
		if (f->buf == NULL) {
			merge_free(&m);
			return 1;
		}
		r.buf = f->buf;
		r.len = f->len;
		m.cur = (uint32_t)i;
		m.t.buf = f->buf; /* strings in it need no copy */
		m.t.len = f->len;
		f->first_pair = (uint32_t)m.t.nlanes;
		sink k = { merge_scan, merge_member, &m };
		bool ok = read_doc(&k, &r);
		if (!ok)
			report(&r);
		arena_free(&r.scratch);
		free(r.nodes);
		f->end_pair = (uint32_t)m.t.nlanes;
		if (!ok) {
			merge_free(&m);
			return 1;
		}
	}
	if (!merge_plan(&m)) {
		merge_free(&m);
		return 1;
	}

	char *tmp;
	m.out = open_output(out_path, &tmp);
	if (m.out == NULL) {
		fprintf(stderr, PROG ": %s: %s\n", out_path, strerror(errno));
		merge_free(&m);
		return 1;
	}
	fputc('{', m.out);
	if (m.unit != NULL) {
		fputs("\"displayTimeUnit\":", m.out);
		put_json_str(m.out, m.unit, m.unitlen);
		fputs(",\n", m.out);
	}
	put_other_data(&m);
	fputs(",\n\"traceEvents\":[\n", m.out);
	m.first = true;
	bool ok = true;
	size_t events = 0;
	for (size_t i = 0; i < m.nfiles && ok; i++) {
		mfile *f = &m.files[i];
		reader r = { .path = f->path, .buf = f->buf, .len = f->len };
		sink k = { merge_write, NULL, &m };
		m.cur = (uint32_t)i;
		/* Read once already: it cannot fail now. */
		ok = read_doc(&k, &r);
		if (!ok)
			report(&r);
		arena_free(&r.scratch);
		free(r.nodes);
		events += f->events;
	}
	fputs("\n]}\n", m.out);

	if (fflush(m.out) != 0 || ferror(m.out))
		ok = false;
	if (m.out != stdout && fclose(m.out) != 0)
		ok = false;
	if (ok && tmp != NULL && rename(tmp, out_path) != 0) {
		fprintf(stderr, PROG ": %s: %s\n", out_path, strerror(errno));
		ok = false;
		remove(tmp);
	} else if (!ok) {
		fprintf(stderr, PROG ": %s: write error\n", out_path);
		if (tmp != NULL)
			remove(tmp);
	}
	/* Only for a file replaced: a FIFO or /dev/stdout may be this
	 * very stdout. */
	if (ok && tmp != NULL)
		printf("%s: %zu event%s of %zu file%s, %zu link%s across "
		    "processes\n", out_path, events, plural(events), m.nfiles,
		    plural(m.nfiles), m.links, plural(m.links));
	free(tmp);
	merge_free(&m);
	return ok ? 0 : 1;
}

/* ----------------------------------------------------------- main */

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: pumped-trace [--roots N] FILE\n"
	    "       pumped-trace --svg OUT [--width PX] [--depth N] FILE\n"
	    "       pumped-trace --merge OUT FILE...\n"
	    "Reads a trace written by libpumped (PUMPED_TRACE=FILE, Chrome "
	    "Trace Event\nJSON; docs/trace.md); FILE - reads stdin.\n"
	    "Without --svg or --merge, prints per flow name: executions, "
	    "completed,\nfailed, cancelled, run time (total, mean, p50, p99) "
	    "and pending time\n(mean, p50, p99); then the critical path of "
	    "the longest roots.\n"
	    "  --roots N    critical paths of the N longest roots (default %d; "
	    "0: none)\n"
	    "  --svg OUT    draw the timeline into OUT: a lane per thread, a "
	    "bar per\n"
	    "               execution coloured by flow, nested ones below\n"
	    "  --width PX   the SVG's width (default %d)\n"
	    "  --depth N    nesting levels drawn per thread (default %d, at "
	    "most %d)\n"
	    "  --merge OUT  join the FILEs of one job (a file per process or "
	    "MPI rank)\n"
	    "               into one trace OUT (- for stdout): times moved "
	    "onto the\n"
	    "               reference clock (otherData.origin_unix_ns, "
	    "clock_offset_ns),\n"
	    "               a pid used by two files renamed in the later "
	    "one, and the\n"
	    "               arrow to a child whose parent is in another file "
	    "moved onto\n"
	    "               that parent\n"
	    "  --help       this text\n"
	    "Exit status: 0 done, 1 unreadable or malformed input (or an "
	    "unwritable\noutput), 2 bad usage.\n", DEFAULT_ROOTS,
	    DEFAULT_WIDTH, DEFAULT_DEPTH, MAX_DEPTH_DRAWN);
}

static int
bad_usage(const char *fmt, const char *arg)
{
	fprintf(stderr, PROG ": ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\nTry 'pumped-trace --help'.\n");
	return 2;
}

/* A whole decimal number in [lo, hi]. */
static bool
parse_count(const char *s, long lo, long hi, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

int
main(int argc, char **argv)
{
	const char *svg = NULL, *merge_out = NULL, *other = NULL;
	long roots = DEFAULT_ROOTS, width = DEFAULT_WIDTH,
	    depth = DEFAULT_DEPTH;
	bool options = true;
	/* The FILEs, gathered over argv's own slots: the k-th sits where
	 * argument k + 1 was, never past the one being read. */
	char **paths = argv + 1;
	size_t npaths = 0;

	for (int i = 1; i < argc; i++) {
		char *a = argv[i];
		const char *val = NULL;
		if (!options || a[0] != '-' || strcmp(a, "-") == 0) {
			paths[npaths++] = a;
			continue;
		}
		if (strcmp(a, "--") == 0) {
			options = false;
			continue;
		}
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			return 0;
		}
		/* The options with a value: --opt VALUE or --opt=VALUE. */
		static const char *const with_value[] = {
			"--roots", "--svg", "--width", "--depth", "--merge",
		};
		size_t which = 0, nopt = sizeof with_value / sizeof *with_value;
		for (; which < nopt; which++) {
			size_t n = strlen(with_value[which]);
			if (strncmp(a, with_value[which], n) != 0)
				continue;
			if (a[n] == '=') {
				val = a + n + 1;
				break;
			}
			if (a[n] == '\0') {
				if (i + 1 >= argc)
					return bad_usage("%s needs a value", a);
				val = argv[++i];
				break;
			}
		}
		if (which == nopt)
			return bad_usage("unknown option '%s'", a);
		if (which != 4)
			other = with_value[which];
		switch (which) {
		case 0:
			if (!parse_count(val, 0, 1000000000, &roots))
				return bad_usage("--roots: '%s' is no count",
				    val);
			break;
		case 1:
			if (*val == '\0')
				return bad_usage("--svg needs a file name%s", "");
			svg = val;
			break;
		case 2:
			if (!parse_count(val, LEFT + RIGHT + 100, 100000,
			    &width))
				return bad_usage("--width: '%s' is not from 290 "
				    "to 100000", val);
			break;
		case 3:
			if (!parse_count(val, 1, MAX_DEPTH_DRAWN, &depth))
				return bad_usage("--depth: '%s' is not from 1 to "
				    "64", val);
			break;
		case 4:
			if (*val == '\0')
				return bad_usage("--merge needs a file name (- for "
				    "stdout)%s", "");
			merge_out = val;
			break;
		}
	}
	if (merge_out != NULL) {
		if (other != NULL)
			return bad_usage("--merge takes no %s", other);
		if (npaths == 0)
			return bad_usage("--merge: no FILE given%s", "");
		int rc = run_merge(merge_out, paths, npaths);
		fflush(stdout);
		if (ferror(stdout)) {
			fprintf(stderr, PROG ": write error on stdout\n");
			rc = 1;
		}
		return rc;
	}
	if (npaths == 0)
		return bad_usage("no FILE given%s", "");
	if (npaths > 1)
		return bad_usage("one FILE only, not also '%s' (--merge joins "
		    "several)", paths[1]);
	const char *path = paths[0];

	reader r = { .path = path };
	trace t = { 0 };
	char *buf = read_input(path, &r.len);
	if (buf == NULL)
		return 1;
	r.buf = t.buf = buf;
	t.len = r.len;
	bool ok = read_trace(&t, &r);
	if (!ok)
		report(&r);
	arena_free(&r.scratch);
	free(r.nodes);
	if (!ok) {
		trace_free(&t);
		free(buf);
		return 1;
	}
	analyse(&t);

	if (t.ignored > 0)
		fprintf(stderr, PROG ": warning: %s: %zu event%s ignored (the "
		    "first at byte %zu: %s)\n", path, t.ignored,
		    plural(t.ignored), t.ignored_pos, t.ignored_why);
	if (t.dropped > 0) {
		fprintf(stderr, PROG ": warning: %s: %.0f events were dropped "
		    "(buffers full", path, t.dropped);
		/* A merged file has no one keep: its inputs' are listed in
		 * its otherData.inputs. */
		if (t.keep != NULL) {
			fputs(", keep \"", stderr);
			put_text(stderr, t.keep, t.keeplen);
			fputc('"', stderr);
		}
		fprintf(stderr, "): the counts and paths miss them\n");
	}

	if (svg != NULL) {
		svg_opts o = { (int)width, (int)depth };
		ok = write_svg(&t, path, svg, &o);
	} else {
		print_summary(&t, path, (size_t)roots);
	}
	fflush(stdout);
	if (ferror(stdout)) {
		fprintf(stderr, PROG ": write error on stdout\n");
		ok = false;
	}
	trace_free(&t);
	free(buf);
	return ok ? 0 : 1;
}
