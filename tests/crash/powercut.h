/* powercut.h: a power-cut model for crash tests: a recorder of the file-system operations the real
 * code makes (link-time seams, see powercut.c), an in-memory file tree, and the crash images a
 * power cut could leave at any point of a recorded trace (tests only). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The model of what power loss keeps (as in ALICE and CrashMonkey, POSIX at its strictest):
 * - a file's data (writes, truncations) is durable once fsync/fdatasync of that file returned;
 * - a directory entry (create, mkdir, rename, unlink) is durable once fsync of that directory
 *   returned; fsync of a file does not make its name durable, nor fsync of a directory its own
 *   entry in its parent;
 * - anything not yet durable may be lost or kept, in any combination (reordered), and a write
 *   may be torn at 512-byte sector granularity. */
#define POWERCUT_SECTOR 512

typedef struct Dirent {
        char *name;
        size_t ino;
} Dirent;

typedef struct Inode {
        bool is_dir;
        uint8_t *data; /* files */
        size_t size, alloc;
        Dirent *entries; /* directories, sorted by name */
        size_t n_entries;
} Inode;

/* A file tree; inode 0 is the root (the state directory under test). */
typedef struct Fs {
        Inode *inodes;
        size_t n_inodes;
} Fs;

typedef enum OpType {
        OP_CREATE,   /* dir/name -> ino, a new file or (is_dir) directory */
        OP_RENAME,   /* dir/name -> dir2/name2 for ino */
        OP_UNLINK,   /* dir/name (if it still names ino) */
        OP_WRITE,    /* ino: data[len] at off */
        OP_TRUNCATE, /* ino: size off */
        OP_SYNC,     /* fsync/fdatasync of ino: a barrier */
} OpType;

typedef struct Op {
        OpType type;
        size_t ino, dir, dir2;
        char *name, *name2;
        uint64_t off;
        uint8_t *data;
        size_t len;
        bool is_dir;
        char *path; /* of ino when the operation was made, for messages */
} Op;

typedef struct Trace {
        Op *ops;
        size_t n_ops, n_alloc;
        /* Every inode the trace may name, the base tree's and new ones: whether it is a directory. */
        bool *is_dir;
        size_t n_inodes;
} Trace;

Fs *fs_new(void);
Fs *fs_copy(const Fs *fs);
void fs_free(Fs *fs);
void fs_freep(Fs **fs);
/* Add an empty directory or file named name in dir; returns its inode. */
size_t fs_add(Fs *fs, size_t dir, const char *name, bool is_dir);
/* FNV-1a of the tree reachable from the root: names, types and contents. */
uint64_t fs_hash(const Fs *fs);
/* Replace the directory path with the tree (0700 directories, 0600 files). Returns 0 or -errno. */
int fs_write_tree(const Fs *fs, const char *path);
/* The tree under path as it is on disk (NULL on an I/O error). */
Fs *fs_read_tree(const char *path);

/* Start recording the operations under root, whose tree is base (as on disk now); the
 * wrappers of open, write, fsync, rename... pass every call through, and record those under
 * root while recording. */
void recorder_start(const char *root, const Fs *base);
/* Stop; the trace goes to *ret (free with trace_done()) and the tree as the recorder believes
 * it is now to *ret_live (caller frees; compare it with fs_read_tree(root)). Either may be NULL.
 * Harmless when not recording. */
void recorder_stop(Trace *ret, Fs **ret_live);
/* The number of operations recorded so far: a point in the trace. */
size_t recorder_position(void);
void trace_done(Trace *t);
/* "fsync outbox/acks.log" and the like, into buf. */
const char *op_describe(const Trace *t, size_t i, char *buf, size_t size);

/* A crash image: the tree after a power cut just before operation point of the trace (point =
 * n_ops: at the end). The callback returns false to report a failed check; the enumeration
 * goes on. what describes the image (e.g. "synced + 3/7 unsynced ops, 1 torn"). */
typedef bool (*image_fn)(void *userdata, const Fs *image, const char *what);

typedef struct PowercutStats {
        size_t images; /* distinct images visited */
        size_t failed; /* of those, how many the callback failed */
} PowercutStats;

/* Visit the distinct crash images at point: only what was synced, everything, prefixes,
 * each unsynced operation alone and left out, torn writes, and random combinations, at most
 * budget images (all combinations when there are few). seed makes the random part repeatable. */
PowercutStats powercut_images(const Fs *base, const Trace *t, size_t point, size_t budget, uint64_t seed,
                              image_fn fn, void *userdata);
