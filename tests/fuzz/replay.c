/* replay.c: main() for fuzz targets built without libFuzzer: feeds every file named on the
 * command line (directories: every file in them) to LLVMFuzzerTestOneInput, so make check
 * replays the seed corpus under ASan and UBSan. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path) {
        FILE *f = fopen(path, "rb");
        if (!f) {
                perror(path);
                return -1;
        }
        size_t cap = 4096, len = 0;
        uint8_t *buf = malloc(cap);
        size_t n;
        while (buf && (n = fread(buf + len, 1, cap - len, f)) > 0) {
                len += n;
                if (len == cap) {
                        uint8_t *b = realloc(buf, cap *= 2);
                        if (!b)
                                free(buf);
                        buf = b;
                }
        }
        fclose(f);
        if (!buf)
                return -1;
        LLVMFuzzerTestOneInput(buf, len);
        free(buf);
        return 1;
}

static int replay_path(const char *path) {
        struct stat st;
        if (stat(path, &st) < 0) {
                perror(path);
                return -1;
        }
        if (!S_ISDIR(st.st_mode))
                return replay_file(path);
        DIR *d = opendir(path);
        if (!d)
                return -1;
        int count = 0;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                char p[4096];
                snprintf(p, sizeof p, "%s/%s", path, de->d_name);
                int r = replay_path(p);
                if (r < 0) {
                        closedir(d);
                        return r;
                }
                count += r;
        }
        closedir(d);
        return count;
}

int main(int argc, char *argv[]) {
        int total = 0;
        for (int i = 1; i < argc; i++) {
                int r = replay_path(argv[i]);
                if (r < 0)
                        return 1;
                total += r;
        }
        printf("replayed %d inputs\n", total);
        return 0;
}
