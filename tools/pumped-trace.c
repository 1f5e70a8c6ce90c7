/*
 * pumped-trace: reads a timeline trace that libpumped wrote (PUMPED_TRACE=
 * FILE, Chrome Trace Event JSON, docs/trace.md) and summarises it: per
 * flow name the executions, their statuses and run and pending times, then
 * the critical path of the longest roots; or, with --svg, draws the
 * timeline.
 *
 * Usage: pumped-trace [--roots N] [--svg OUT [--width PX] [--depth N]] FILE
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
 * Exit status: 0 done, 1 the input could not be read or is malformed (or
 * an output could not be written), 2 bad usage.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
	const char *str;        /* J_STR: UTF-8, may hold NUL bytes */
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
		if (!parse_number(r, &v))
			return false;
		*out = new_node(r, J_NUM);
		r->nodes[*out].num = v;
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
	table exec_tab, flow_tab, lane_tab;
	size_t events;          /* elements of traceEvents */
	bool have_events;
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
	free(t->exec_tab.slots);
	free(t->flow_tab.slots);
	free(t->lane_tab.slots);
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
	if (!member_str(r, ev, "name", &name, &namelen) ||
	    !key_is(name, namelen, "thread_name"))
		return true; /* process_name and others: nothing to use */
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
	t->events++;
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

/* The elements of the traceEvents array at r->pos, one tree each. */
static bool
read_events(trace *t, reader *r, int depth)
{
	t->have_events = true;
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
		take_event(t, r, ev, pos);
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
 * The document: an object whose traceEvents and otherData are taken (the
 * other members are read and forgotten), or, as Chrome also accepts, a
 * bare array of events.
 */
static bool
read_trace(trace *t, reader *r)
{
	skip_ws(r);
	if (peek(r) == '[') {
		if (!read_events(t, r, 1))
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
				if (!read_events(t, r, 2))
					return false;
			} else {
				bool od = key_is(key, keylen, "otherData");
				if (!parse_value(r, 1, &v))
					return false;
				if (od)
					take_other_data(t, r, v);
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
	if (!t->have_events)
		return fail(r, 0, "no traceEvents array: not a trace");
	return true;
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
	for (size_t i = 0; i < t->nslices; i++)
		nroots += t->slices[i].parent == NONE32;
	printf("\n%zu event%s, %zu execution%s of %zu flow%s, %zu root%s, %zu "
	    "thread%s\n", t->events, plural(t->events), nexec, plural(nexec),
	    nflows, plural(nflows), nroots, plural(nroots), t->nlanes,
	    plural(t->nlanes));
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
		if (l->label != NULL)
			put_xml_cut(out, l->label, l->labellen, LABEL_MAX);
		else
			fprintf(out, "tid %lld", (long long)l->tid);
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

/* ----------------------------------------------------------- main */

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: pumped-trace [--roots N] FILE\n"
	    "       pumped-trace --svg OUT [--width PX] [--depth N] FILE\n"
	    "Reads a trace written by libpumped (PUMPED_TRACE=FILE, Chrome "
	    "Trace Event\nJSON; docs/trace.md); FILE - reads stdin.\n"
	    "Without --svg, prints per flow name: executions, completed, "
	    "failed,\ncancelled, run time (total, mean, p50, p99) and pending "
	    "time (mean, p50,\np99); then the critical path of the longest "
	    "roots.\n"
	    "  --roots N    critical paths of the N longest roots (default %d; "
	    "0: none)\n"
	    "  --svg OUT    draw the timeline into OUT: a lane per thread, a "
	    "bar per\n"
	    "               execution coloured by flow, nested ones below\n"
	    "  --width PX   the SVG's width (default %d)\n"
	    "  --depth N    nesting levels drawn per thread (default %d, at "
	    "most %d)\n"
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
	const char *path = NULL, *svg = NULL;
	long roots = DEFAULT_ROOTS, width = DEFAULT_WIDTH,
	    depth = DEFAULT_DEPTH;
	bool options = true;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *val = NULL;
		if (!options || a[0] != '-' || strcmp(a, "-") == 0) {
			if (path != NULL)
				return bad_usage("one FILE only, not also '%s'",
				    a);
			path = a;
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
			"--roots", "--svg", "--width", "--depth",
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
		}
	}
	if (path == NULL)
		return bad_usage("no FILE given%s", "");

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
		    "(buffers full, keep \"", path, t.dropped);
		if (t.keep != NULL)
			put_text(stderr, t.keep, t.keeplen);
		fprintf(stderr, "\"): the counts and paths miss them\n");
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
