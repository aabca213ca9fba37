/* wrap: open openat write pwritev fsync fdatasync rename unlink unlinkat mkdir ftruncate close */
/* powercut.c: records the file-system operations of the real code and builds the crash images a
 * power cut could leave (tests only; see powercut.h for the model). */
#define _GNU_SOURCE
#include "powercut.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "../lib/temp_dir.h"

/* Tests only: running out of memory ends the test. */
static void *xrealloc(void *p, size_t n) {
        p = realloc(p, n ? n : 1);
        if (!p)
                abort();
        return p;
}

static void *xcalloc(size_t n, size_t size) {
        void *p = calloc(n ? n : 1, size);
        if (!p)
                abort();
        return p;
}

static char *xstrdup(const char *s) {
        char *p = strdup(s);
        if (!p)
                abort();
        return p;
}

static void *xmemdup(const void *data, size_t len) {
        void *p = xrealloc(NULL, len);
        memcpy(p, data, len);
        return p;
}

/* ---- the file tree ---- */

Fs *fs_new(void) {
        Fs *fs = xcalloc(1, sizeof *fs);
        fs->inodes = xcalloc(1, sizeof *fs->inodes);
        fs->inodes[0].is_dir = true;
        fs->n_inodes = 1;
        return fs;
}

Fs *fs_copy(const Fs *fs) {
        Fs *c = xcalloc(1, sizeof *c);
        c->inodes = xcalloc(fs->n_inodes, sizeof *c->inodes);
        c->n_inodes = fs->n_inodes;
        for (size_t i = 0; i < fs->n_inodes; i++) {
                const Inode *from = &fs->inodes[i];
                Inode *to = &c->inodes[i];
                *to = (Inode) { .is_dir = from->is_dir, .size = from->size, .alloc = from->size,
                                .n_entries = from->n_entries };
                if (from->size > 0)
                        to->data = xmemdup(from->data, from->size);
                if (from->n_entries > 0) {
                        to->entries = xcalloc(from->n_entries, sizeof *to->entries);
                        for (size_t k = 0; k < from->n_entries; k++)
                                to->entries[k] = (Dirent) { xstrdup(from->entries[k].name), from->entries[k].ino };
                }
        }
        return c;
}

void fs_free(Fs *fs) {
        if (!fs)
                return;
        for (size_t i = 0; i < fs->n_inodes; i++) {
                free(fs->inodes[i].data);
                for (size_t k = 0; k < fs->inodes[i].n_entries; k++)
                        free(fs->inodes[i].entries[k].name);
                free(fs->inodes[i].entries);
        }
        free(fs->inodes);
        free(fs);
}

void fs_freep(Fs **fs) {
        fs_free(*fs);
}

/* Make room for inodes 0..n-1; new ones are empty files or directories as types says. */
static void fs_grow(Fs *fs, size_t n, const bool *is_dir) {
        if (n <= fs->n_inodes)
                return;
        fs->inodes = xrealloc(fs->inodes, n * sizeof *fs->inodes);
        for (size_t i = fs->n_inodes; i < n; i++)
                fs->inodes[i] = (Inode) { .is_dir = is_dir[i] };
        fs->n_inodes = n;
}

/* Index of name in dir's entries, or where it would go (*found false). */
static size_t dir_find(const Inode *dir, const char *name, bool *found) {
        size_t lo = 0, hi = dir->n_entries;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                int c = strcmp(dir->entries[mid].name, name);
                if (c == 0) {
                        *found = true;
                        return mid;
                }
                if (c < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        *found = false;
        return lo;
}

static bool fs_lookup(const Fs *fs, size_t dir, const char *name, size_t *ret) {
        bool found;
        size_t at = dir_find(&fs->inodes[dir], name, &found);
        if (found)
                *ret = fs->inodes[dir].entries[at].ino;
        return found;
}

static void dir_set(Fs *fs, size_t dir, const char *name, size_t ino) {
        Inode *d = &fs->inodes[dir];
        bool found;
        size_t at = dir_find(d, name, &found);
        if (found) {
                d->entries[at].ino = ino;
                return;
        }
        d->entries = xrealloc(d->entries, (d->n_entries + 1) * sizeof *d->entries);
        memmove(d->entries + at + 1, d->entries + at, (d->n_entries - at) * sizeof *d->entries);
        d->entries[at] = (Dirent) { xstrdup(name), ino };
        d->n_entries++;
}

/* Remove dir/name if it still names ino. */
static void dir_remove(Fs *fs, size_t dir, const char *name, size_t ino) {
        Inode *d = &fs->inodes[dir];
        bool found;
        size_t at = dir_find(d, name, &found);
        if (!found || d->entries[at].ino != ino)
                return;
        free(d->entries[at].name);
        memmove(d->entries + at, d->entries + at + 1, (d->n_entries - at - 1) * sizeof *d->entries);
        d->n_entries--;
}

size_t fs_add(Fs *fs, size_t dir, const char *name, bool is_dir) {
        size_t ino = fs->n_inodes;
        fs->inodes = xrealloc(fs->inodes, (ino + 1) * sizeof *fs->inodes);
        fs->inodes[ino] = (Inode) { .is_dir = is_dir };
        fs->n_inodes++;
        dir_set(fs, dir, name, ino);
        return ino;
}

static void file_resize(Inode *f, size_t size) {
        if (size > f->alloc) {
                /* Appends of small records grow files one by one: grow geometrically. */
                f->alloc = size > 2 * f->alloc ? size : 2 * f->alloc;
                f->data = xrealloc(f->data, f->alloc);
        }
        if (size > f->size)
                memset(f->data + f->size, 0, size - f->size);
        f->size = size;
}

/* Write data[from..to) of a WRITE operation. */
static void file_write_part(Inode *f, const Op *op, size_t from, size_t to) {
        if (op->off + to > f->size)
                file_resize(f, op->off + to);
        memcpy(f->data + op->off + from, op->data + from, to - from);
}

static size_t write_sectors(const Op *op) {
        return (op->off + op->len - 1) / POWERCUT_SECTOR - op->off / POWERCUT_SECTOR + 1;
}

/* Apply op; a WRITE with sectors keeps only the sectors (of those it spans, in order) that are
 * true: a torn write. */
static void fs_apply(Fs *fs, const Op *op, const bool *sectors) {
        switch (op->type) {
        case OP_CREATE:
                dir_set(fs, op->dir, op->name, op->ino);
                break;
        case OP_RENAME:
                dir_remove(fs, op->dir, op->name, op->ino);
                dir_set(fs, op->dir2, op->name2, op->ino);
                break;
        case OP_UNLINK:
                dir_remove(fs, op->dir, op->name, op->ino);
                break;
        case OP_WRITE:
                if (!sectors) {
                        file_write_part(&fs->inodes[op->ino], op, 0, op->len);
                        break;
                }
                for (size_t s = 0, n = write_sectors(op); s < n; s++) {
                        if (!sectors[s])
                                continue;
                        uint64_t sector_start = (op->off / POWERCUT_SECTOR + s) * POWERCUT_SECTOR;
                        size_t from = sector_start > op->off ? (size_t) (sector_start - op->off) : 0;
                        size_t to = (size_t) (sector_start + POWERCUT_SECTOR - op->off);
                        file_write_part(&fs->inodes[op->ino], op, from, to < op->len ? to : op->len);
                }
                break;
        case OP_TRUNCATE:
                file_resize(&fs->inodes[op->ino], (size_t) op->off);
                break;
        case OP_SYNC:
                break;
        }
}

/* FNV-1a, a word at a time: images hold megabytes. */
static uint64_t fnv(uint64_t h, const void *data, size_t len) {
        const uint8_t *p = data;
        for (; len >= 8; p += 8, len -= 8) {
                uint64_t w;
                memcpy(&w, p, 8);
                h = (h ^ w) * UINT64_C(0x100000001b3);
        }
        for (; len > 0; p++, len--)
                h = (h ^ *p) * UINT64_C(0x100000001b3);
        return h;
}

static uint64_t hash_tree(const Fs *fs, size_t ino, uint64_t h, unsigned depth) {
        const Inode *n = &fs->inodes[ino];
        h = fnv(h, n->is_dir ? "d" : "f", 1);
        if (!n->is_dir) {
                h = fnv(h, &n->size, sizeof n->size);
                return fnv(h, n->data, n->size);
        }
        if (depth > 16) /* a cycle cannot happen without rename of directories; be safe */
                abort();
        for (size_t k = 0; k < n->n_entries; k++) {
                h = fnv(h, n->entries[k].name, strlen(n->entries[k].name) + 1);
                h = hash_tree(fs, n->entries[k].ino, h, depth + 1);
        }
        return fnv(h, "/", 1);
}

uint64_t fs_hash(const Fs *fs) {
        return hash_tree(fs, 0, UINT64_C(0xcbf29ce484222325), 0);
}

static int write_tree(const Fs *fs, size_t ino, const char *path) {
        const Inode *n = &fs->inodes[ino];
        if (!n->is_dir) {
                int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
                if (fd < 0)
                        return -errno;
                ssize_t k = n->size > 0 ? write(fd, n->data, n->size) : 0;
                int r = k < 0 ? -errno : (size_t) k != n->size ? -EIO : 0;
                (void) close(fd);
                return r;
        }
        if (mkdir(path, 0700) < 0)
                return -errno;
        for (size_t k = 0; k < n->n_entries; k++) {
                char child[4096];
                if ((size_t) snprintf(child, sizeof child, "%s/%s", path, n->entries[k].name) >= sizeof child)
                        return -ENAMETOOLONG;
                int r = write_tree(fs, n->entries[k].ino, child);
                if (r < 0)
                        return r;
        }
        return 0;
}

int fs_write_tree(const Fs *fs, const char *path) {
        remove_tree(path);
        return write_tree(fs, 0, path);
}

static int read_tree(Fs *fs, size_t ino, const char *path) {
        DIR *d = opendir(path);
        if (!d)
                return -errno;
        int r = 0;
        for (struct dirent *de; r >= 0 && (de = readdir(d));) {
                char child[4096];
                struct stat st;
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                if ((size_t) snprintf(child, sizeof child, "%s/%s", path, de->d_name) >= sizeof child)
                        r = -ENAMETOOLONG;
                else if (lstat(child, &st) < 0)
                        r = -errno;
                else if (S_ISDIR(st.st_mode))
                        r = read_tree(fs, fs_add(fs, ino, de->d_name, true), child);
                else {
                        size_t file = fs_add(fs, ino, de->d_name, false);
                        FILE *f = fopen(child, "rbe");
                        if (!f) {
                                r = -errno;
                                break;
                        }
                        Inode *n = &fs->inodes[file];
                        n->size = n->alloc = (size_t) st.st_size;
                        n->data = xrealloc(NULL, n->size);
                        if (fread(n->data, 1, n->size, f) != n->size)
                                r = -EIO;
                        (void) fclose(f);
                }
        }
        (void) closedir(d);
        return r;
}

Fs *fs_read_tree(const char *path) {
        Fs *fs = fs_new();
        if (read_tree(fs, 0, path) < 0) {
                fs_free(fs);
                return NULL;
        }
        return fs;
}

/* ---- the recorder ---- */

#define FD_MAX 4096
#define NO_INODE SIZE_MAX

static struct {
        bool active;
        char root[4096];
        size_t root_len;
        Fs *live;       /* the tree as it is on disk now, by the recorded operations */
        Trace trace;
        size_t fds[FD_MAX]; /* inode behind each descriptor opened under root, or NO_INODE */
} rec;

/* Where a path or (directory, name) leads in the live tree. */
typedef struct Where {
        size_t dir;
        char name[256];
        bool exists;
        size_t ino;
} Where;

static void trace_note_inode(Trace *t, size_t ino, bool is_dir) {
        if (ino >= t->n_inodes) {
                t->is_dir = xrealloc(t->is_dir, (ino + 1) * sizeof *t->is_dir);
                memset(t->is_dir + t->n_inodes, 0, (ino + 1 - t->n_inodes) * sizeof *t->is_dir);
                t->n_inodes = ino + 1;
        }
        t->is_dir[ino] = is_dir;
}

/* The path of ino relative to the root, found by walking the tree. */
static bool path_of(const Fs *fs, size_t dir, size_t ino, char *buf, size_t size) {
        const Inode *d = &fs->inodes[dir];
        for (size_t k = 0; k < d->n_entries; k++) {
                size_t len = strlen(buf);
                if ((size_t) snprintf(buf + len, size - len, "%s%s", len ? "/" : "", d->entries[k].name) >= size - len)
                        return false;
                if (d->entries[k].ino == ino ||
                    (fs->inodes[d->entries[k].ino].is_dir && path_of(fs, d->entries[k].ino, ino, buf, size)))
                        return true;
                buf[len] = 0;
        }
        return false;
}

static bool inode_path(const Fs *fs, size_t ino, char *buf, size_t size) {
        buf[0] = 0;
        if (ino == 0) {
                (void) snprintf(buf, size, ".");
                return true;
        }
        return path_of(fs, 0, ino, buf, size);
}

static void record(Op op) {
        Trace *t = &rec.trace;
        if (t->n_ops == t->n_alloc) {
                t->n_alloc = t->n_alloc ? 2 * t->n_alloc : 256;
                t->ops = xrealloc(t->ops, t->n_alloc * sizeof *t->ops);
        }
        fs_grow(rec.live, t->n_inodes, t->is_dir);
        char before[1024], after[1024];
        bool had_path = inode_path(rec.live, op.ino, before, sizeof before);
        fs_apply(rec.live, &op, NULL);
        op.path = xstrdup(inode_path(rec.live, op.ino, after, sizeof after) ? after : had_path ? before : "?");
        t->ops[t->n_ops++] = op;
}

static size_t fd_inode(int fd) {
        return rec.active && fd >= 0 && fd < FD_MAX ? rec.fds[fd] : NO_INODE;
}

static bool resolve_at(size_t dir, const char *name, Where *ret) {
        size_t len = strlen(name);
        if (strchr(name, '/') || len >= sizeof ret->name)
                return false;
        *ret = (Where) { .dir = dir };
        memcpy(ret->name, name, len + 1);
        if (strcmp(name, ".") == 0) {
                ret->exists = true;
                ret->ino = dir;
                return true;
        }
        ret->exists = fs_lookup(rec.live, dir, name, &ret->ino);
        return true;
}

static bool resolve_path(const char *path, Where *ret) {
        if (!rec.active || strncmp(path, rec.root, rec.root_len) != 0)
                return false;
        const char *rest = path + rec.root_len;
        if (*rest == 0) {
                *ret = (Where) { .exists = true, .ino = 0 };
                return true;
        }
        if (*rest != '/')
                return false;
        size_t dir = 0;
        for (;;) {
                rest++;
                const char *slash = strchr(rest, '/');
                if (!slash)
                        return resolve_at(dir, rest, ret);
                char component[256];
                size_t len = (size_t) (slash - rest);
                if (len >= sizeof component)
                        return false;
                memcpy(component, rest, len);
                component[len] = 0;
                if (!fs_lookup(rec.live, dir, component, &dir) || !rec.live->inodes[dir].is_dir)
                        return false;
                rest = slash;
        }
}

static bool resolve_fd_at(int dirfd, const char *name, Where *ret) {
        size_t dir = fd_inode(dirfd);
        return dir != NO_INODE && rec.live->inodes[dir].is_dir && resolve_at(dir, name, ret);
}

static void after_open(int fd, const Where *w, int flags) {
        if (fd < 0 || fd >= FD_MAX)
                return;
        rec.fds[fd] = NO_INODE;
        if (!w)
                return;
        if (flags & O_APPEND) {
                fprintf(stderr, "powercut: O_APPEND is not modelled\n");
                abort();
        }
        size_t ino = w->ino;
        if (!w->exists) {
                ino = rec.trace.n_inodes > rec.live->n_inodes ? rec.trace.n_inodes : rec.live->n_inodes;
                trace_note_inode(&rec.trace, ino, false);
                record((Op) { .type = OP_CREATE, .dir = w->dir, .name = xstrdup(w->name), .ino = ino });
        } else if ((flags & O_TRUNC) && rec.live->inodes[ino].size > 0)
                record((Op) { .type = OP_TRUNCATE, .ino = ino, .off = 0 });
        rec.fds[fd] = ino;
}

/* The mode of open(2) and openat(2), read from the caller's variadic arguments (after flags)
 * only when the call may create a file: otherwise there is none to read. */
#define OPEN_MODE(flags)                                                         \
        ({                                                                       \
                mode_t mode_ = 0;                                                \
                if (((flags) & O_CREAT) || ((flags) & O_TMPFILE) == O_TMPFILE) { \
                        va_list ap_;                                             \
                        va_start(ap_, flags);                                    \
                        mode_ = va_arg(ap_, mode_t);                             \
                        va_end(ap_);                                             \
                }                                                                \
                mode_;                                                           \
        })

/* open(path) is openat(AT_FDCWD, path): both resolve and record here. */
int __real_openat(int dirfd, const char *name, int flags, ...);
static int openat_recorded(int dirfd, const char *name, int flags, mode_t mode) {
        Where w;
        bool known = dirfd == AT_FDCWD ? resolve_path(name, &w) : resolve_fd_at(dirfd, name, &w);
        int fd = __real_openat(dirfd, name, flags, mode);
        after_open(fd, known ? &w : NULL, flags);
        return fd;
}

int __wrap_open(const char *path, int flags, ...);
int __wrap_open(const char *path, int flags, ...) {
        return openat_recorded(AT_FDCWD, path, flags, OPEN_MODE(flags));
}

int __wrap_openat(int dirfd, const char *name, int flags, ...);
int __wrap_openat(int dirfd, const char *name, int flags, ...) {
        return openat_recorded(dirfd, name, flags, OPEN_MODE(flags));
}

static void record_write(size_t ino, uint64_t off, const void *data, size_t len) {
        record((Op) { .type = OP_WRITE, .ino = ino, .off = off, .data = xmemdup(data, len), .len = len });
}

ssize_t __real_write(int fd, const void *buf, size_t len);
ssize_t __wrap_write(int fd, const void *buf, size_t len);
ssize_t __wrap_write(int fd, const void *buf, size_t len) {
        size_t ino = fd_inode(fd);
        off_t off = ino != NO_INODE ? lseek(fd, 0, SEEK_CUR) : 0;
        ssize_t k = __real_write(fd, buf, len);
        if (k > 0 && ino != NO_INODE)
                record_write(ino, (uint64_t) off, buf, (size_t) k);
        return k;
}

ssize_t __real_pwritev(int fd, const struct iovec *iov, int n, off_t off);
ssize_t __wrap_pwritev(int fd, const struct iovec *iov, int n, off_t off);
ssize_t __wrap_pwritev(int fd, const struct iovec *iov, int n, off_t off) {
        size_t ino = fd_inode(fd);
        ssize_t k = __real_pwritev(fd, iov, n, off);
        if (k > 0 && ino != NO_INODE) {
                uint8_t *data = xrealloc(NULL, (size_t) k);
                for (size_t done = 0, i = 0; done < (size_t) k; i++) {
                        size_t part = iov[i].iov_len < (size_t) k - done ? iov[i].iov_len : (size_t) k - done;
                        memcpy(data + done, iov[i].iov_base, part);
                        done += part;
                }
                record((Op) { .type = OP_WRITE, .ino = ino, .off = (uint64_t) off, .data = data, .len = (size_t) k });
        }
        return k;
}

static void record_sync(int fd) {
        size_t ino = fd_inode(fd);
        if (ino != NO_INODE)
                record((Op) { .type = OP_SYNC, .ino = ino });
}

int __real_fsync(int fd);
int __wrap_fsync(int fd);
int __wrap_fsync(int fd) {
        int r = __real_fsync(fd);
        if (r == 0)
                record_sync(fd);
        return r;
}

int __real_fdatasync(int fd);
int __wrap_fdatasync(int fd);
int __wrap_fdatasync(int fd) {
        int r = __real_fdatasync(fd);
        if (r == 0)
                record_sync(fd);
        return r;
}

static void record_unlink(const Where *w) {
        if (w->exists && w->ino != 0)
                record((Op) { .type = OP_UNLINK, .dir = w->dir, .name = xstrdup(w->name), .ino = w->ino });
}

int __real_unlink(const char *path);
int __wrap_unlink(const char *path);
int __wrap_unlink(const char *path) {
        Where w;
        bool known = resolve_path(path, &w);
        int r = __real_unlink(path);
        if (r == 0 && known)
                record_unlink(&w);
        return r;
}

int __real_unlinkat(int dirfd, const char *name, int flags);
int __wrap_unlinkat(int dirfd, const char *name, int flags);
int __wrap_unlinkat(int dirfd, const char *name, int flags) {
        Where w;
        bool known = resolve_fd_at(dirfd, name, &w);
        int r = __real_unlinkat(dirfd, name, flags);
        if (r == 0 && known)
                record_unlink(&w);
        return r;
}

int __real_rename(const char *from, const char *to);
int __wrap_rename(const char *from, const char *to);
int __wrap_rename(const char *from, const char *to) {
        Where a, b;
        bool known = resolve_path(from, &a) && resolve_path(to, &b) && a.exists && a.ino != 0;
        int r = __real_rename(from, to);
        if (r == 0 && known)
                record((Op) { .type = OP_RENAME, .dir = a.dir, .name = xstrdup(a.name), .dir2 = b.dir,
                              .name2 = xstrdup(b.name), .ino = a.ino });
        return r;
}

int __real_mkdir(const char *path, mode_t mode);
int __wrap_mkdir(const char *path, mode_t mode);
int __wrap_mkdir(const char *path, mode_t mode) {
        Where w;
        bool known = resolve_path(path, &w) && !w.exists;
        int r = __real_mkdir(path, mode);
        if (r == 0 && known) {
                size_t ino = rec.trace.n_inodes > rec.live->n_inodes ? rec.trace.n_inodes : rec.live->n_inodes;
                trace_note_inode(&rec.trace, ino, true);
                record((Op) { .type = OP_CREATE, .dir = w.dir, .name = xstrdup(w.name), .ino = ino, .is_dir = true });
        }
        return r;
}

int __real_ftruncate(int fd, off_t len);
int __wrap_ftruncate(int fd, off_t len);
int __wrap_ftruncate(int fd, off_t len) {
        size_t ino = fd_inode(fd);
        int r = __real_ftruncate(fd, len);
        if (r == 0 && ino != NO_INODE)
                record((Op) { .type = OP_TRUNCATE, .ino = ino, .off = (uint64_t) len });
        return r;
}

int __real_close(int fd);
int __wrap_close(int fd);
int __wrap_close(int fd) {
        if (fd >= 0 && fd < FD_MAX)
                rec.fds[fd] = NO_INODE;
        return __real_close(fd);
}

void recorder_start(const char *root, const Fs *base) {
        recorder_stop(NULL, NULL);
        rec.root_len = strlen(root);
        if (rec.root_len >= sizeof rec.root)
                abort();
        memcpy(rec.root, root, rec.root_len + 1);
        rec.live = fs_copy(base);
        rec.trace = (Trace) {};
        for (size_t i = 0; i < base->n_inodes; i++)
                trace_note_inode(&rec.trace, i, base->inodes[i].is_dir);
        for (size_t i = 0; i < FD_MAX; i++)
                rec.fds[i] = NO_INODE;
        rec.active = true;
}

void recorder_stop(Trace *ret, Fs **ret_live) {
        if (!rec.active)
                return;
        rec.active = false;
        if (ret)
                *ret = rec.trace;
        else
                trace_done(&rec.trace);
        if (ret_live)
                *ret_live = rec.live;
        else
                fs_free(rec.live);
        rec.live = NULL;
        rec.trace = (Trace) {};
}

size_t recorder_position(void) {
        return rec.trace.n_ops;
}

void trace_done(Trace *t) {
        for (size_t i = 0; i < t->n_ops; i++) {
                free(t->ops[i].name);
                free(t->ops[i].name2);
                free(t->ops[i].data);
                free(t->ops[i].path);
        }
        free(t->ops);
        free(t->is_dir);
        *t = (Trace) {};
}

const char *op_describe(const Trace *t, size_t i, char *buf, size_t size) {
        if (i >= t->n_ops) {
                (void) snprintf(buf, size, "the end of the trace");
                return buf;
        }
        const Op *op = &t->ops[i];
        const char *path = op->path;
        switch (op->type) {
        case OP_CREATE:
                (void) snprintf(buf, size, "%s %s", op->is_dir ? "mkdir" : "create", path);
                break;
        case OP_RENAME:
                (void) snprintf(buf, size, "rename %s -> %s", op->name, path);
                break;
        case OP_UNLINK:
                (void) snprintf(buf, size, "unlink %s", path);
                break;
        case OP_WRITE:
                (void) snprintf(buf, size, "write %zu bytes at %llu of %s", op->len, (unsigned long long) op->off, path);
                break;
        case OP_TRUNCATE:
                (void) snprintf(buf, size, "truncate %s to %llu", path, (unsigned long long) op->off);
                break;
        case OP_SYNC:
                (void) snprintf(buf, size, "fsync %s", path);
                break;
        }
        return buf;
}

/* ---- crash images ---- */

enum { SKIP, APPLY, TORN };

typedef struct Unit {
        size_t op;      /* an operation not yet durable at the crash point */
        uint8_t how;    /* SKIP, APPLY or TORN */
        uint32_t seed;  /* TORN: 0 keeps the first half of the sectors, else a random half */
} Unit;

typedef struct Enumeration {
        const Fs *base;
        const Trace *trace;
        size_t point;
        bool *durable; /* per operation before point */
        Unit *units;
        size_t n_units;
        uint64_t *seen;
        size_t n_seen, budget;
        PowercutStats stats;
        image_fn fn;
        void *userdata;
} Enumeration;

static uint64_t xorshift(uint64_t *s) {
        *s ^= *s << 13;
        *s ^= *s >> 7;
        *s ^= *s << 17;
        return *s;
}

static bool write_is_tearable(const Op *op) {
        return op->type == OP_WRITE && write_sectors(op) > 1;
}

/* An operation is durable at the crash point if a later barrier (before the point) covers it. */
static void mark_durable(Enumeration *e) {
        const Trace *t = e->trace;
        bool *synced = xcalloc(t->n_inodes, sizeof *synced);
        for (size_t i = e->point; i-- > 0;) {
                const Op *op = &t->ops[i];
                switch (op->type) {
                case OP_SYNC:
                        synced[op->ino] = true;
                        e->durable[i] = true;
                        break;
                case OP_CREATE:
                case OP_UNLINK:
                        e->durable[i] = synced[op->dir];
                        break;
                case OP_RENAME:
                        e->durable[i] = synced[op->dir] && synced[op->dir2];
                        break;
                case OP_WRITE:
                case OP_TRUNCATE:
                        e->durable[i] = synced[op->ino];
                        break;
                }
        }
        free(synced);
}

static void visit(Enumeration *e) {
        if (e->stats.images >= e->budget)
                return;
        Fs *image = fs_copy(e->base);
        fs_grow(image, e->trace->n_inodes, e->trace->is_dir);
        size_t u = 0, applied = 0, torn = 0;
        for (size_t i = 0; i < e->point; i++) {
                const Op *op = &e->trace->ops[i];
                if (e->durable[i]) {
                        fs_apply(image, op, NULL);
                        continue;
                }
                const Unit *unit = &e->units[u++];
                if (unit->how == APPLY) {
                        fs_apply(image, op, NULL);
                        applied++;
                } else if (unit->how == TORN) {
                        size_t n = write_sectors(op);
                        bool *sectors = xcalloc(n, sizeof *sectors);
                        uint64_t s = unit->seed;
                        for (size_t k = 0; k < n; k++)
                                sectors[k] = unit->seed == 0 ? k < n / 2 : (xorshift(&s) & 1) != 0;
                        sectors[0] = true; /* at least one sector written, one not */
                        sectors[n - 1] = false;
                        fs_apply(image, op, sectors);
                        free(sectors);
                        torn++;
                }
        }

        uint64_t h = fs_hash(image);
        bool dup = false;
        for (size_t i = 0; i < e->n_seen && !dup; i++)
                dup = e->seen[i] == h;
        if (!dup) {
                e->seen[e->n_seen++] = h;
                char what[128];
                (void) snprintf(what, sizeof what, "synced + %zu/%zu unsynced ops%s", applied, e->n_units,
                                torn ? ", torn writes" : "");
                e->stats.images++;
                if (!e->fn(e->userdata, image, what))
                        e->stats.failed++;
        }
        fs_free(image);
}

static void set_all(Enumeration *e, uint8_t how) {
        for (size_t i = 0; i < e->n_units; i++)
                e->units[i] = (Unit) { e->units[i].op, how, 0 };
}

/* The k-th of n indexes spread evenly over 0..m-1 (all of them when n >= m). */
static size_t spread(size_t k, size_t n, size_t m) {
        return n >= m ? k : k * m / n;
}

PowercutStats powercut_images(const Fs *base, const Trace *t, size_t point, size_t budget, uint64_t seed,
                              image_fn fn, void *userdata) {
        Enumeration e = {
                .base = base,
                .trace = t,
                .point = point,
                .durable = xcalloc(point, sizeof(bool)),
                .seen = xcalloc(budget, sizeof(uint64_t)),
                .budget = budget,
                .fn = fn,
                .userdata = userdata,
        };
        mark_durable(&e);
        e.units = xcalloc(point, sizeof *e.units);
        for (size_t i = 0; i < point; i++)
                if (!e.durable[i])
                        e.units[e.n_units++] = (Unit) { .op = i };
        size_t m = e.n_units;
        uint64_t rng = seed | 1;

        set_all(&e, SKIP); /* only what was synced */
        visit(&e);
        set_all(&e, APPLY); /* everything: what kill -9 leaves */
        visit(&e);
        if (m <= 5) {
                for (size_t mask = 1; mask + 1 < (size_t) 1 << m; mask++) {
                        for (size_t i = 0; i < m; i++)
                                e.units[i].how = (mask >> i) & 1 ? APPLY : SKIP;
                        visit(&e);
                }
        } else {
                size_t n = budget / 4;
                for (size_t k = 0; k < n && k < m; k++) { /* prefixes: writes that reached the disk in order */
                        size_t cut = spread(k, n, m);
                        for (size_t i = 0; i < m; i++)
                                e.units[i].how = i < cut ? APPLY : SKIP;
                        visit(&e);
                }
                for (size_t k = 0; k < n && k < m; k++) { /* reordered: each one lost while the rest made it */
                        size_t lost = spread(k, n, m);
                        set_all(&e, APPLY);
                        e.units[lost].how = SKIP;
                        visit(&e);
                }
        }
        /* Torn writes: each multi-sector write torn, after everything before it and with or without what follows. */
        for (size_t i = 0, torn = 0; i < m && torn < budget / 4; i++) {
                if (!write_is_tearable(&t->ops[e.units[i].op]))
                        continue;
                torn++;
                for (size_t k = 0; k < m; k++)
                        e.units[k].how = k < i ? APPLY : SKIP;
                e.units[i] = (Unit) { e.units[i].op, TORN, 0 };
                visit(&e);
                for (size_t k = i + 1; k < m; k++)
                        e.units[k].how = APPLY;
                e.units[i].seed = (uint32_t) (xorshift(&rng) | 1);
                visit(&e);
        }
        /* Random combinations of lost, kept and torn operations, until the budget is spent. */
        for (size_t attempt = 0; m > 0 && attempt < 4 * budget && e.stats.images < budget; attempt++) {
                for (size_t i = 0; i < m; i++) {
                        uint64_t r = xorshift(&rng) % 5;
                        bool tear = r == 4 && write_is_tearable(&t->ops[e.units[i].op]);
                        e.units[i] = (Unit) { e.units[i].op, tear ? TORN : r < 2 ? SKIP : APPLY, (uint32_t) (xorshift(&rng) | 1) };
                }
                visit(&e);
        }

        free(e.durable);
        free(e.units);
        free(e.seen);
        return e.stats;
}
