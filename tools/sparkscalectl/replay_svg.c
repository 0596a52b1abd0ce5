/* replay_svg.c: the replay's chart as one self-contained SVG file: step
 * lines of demand (in workers), recommended, desired and current workers and
 * the Oshinko rule's size over time, and the seconds in which the scale-down
 * window held a shrink shaded. No scripts, fonts or external references. */
#include "tools/sparkscalectl/replay.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define W 1100
#define H 470
#define ML 56                  /* plot margins */
#define MR 190
#define MT 74
#define MB 44
#define MAX_POINTS 2400        /* longer replays are drawn as bucket maxima */

typedef struct series {
    const char *name;
    const char *style;         /* SVG presentation attributes */
    size_t offset;             /* of the int field in rp_second */
} series;

static const series lines[] = {
    { "current", "fill=\"none\" stroke=\"#2ca02c\" stroke-width=\"3\"",
      offsetof(rp_second, current) },
    { "desired", "fill=\"none\" stroke=\"#ff7f0e\" stroke-width=\"1.4\"",
      offsetof(rp_second, desired) },
    { "recommended", "fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"1.2\" "
      "stroke-dasharray=\"5 3\"", offsetof(rp_second, recommended) },
    { "Oshinko rule", "fill=\"none\" stroke=\"#9467bd\" stroke-width=\"1.2\" "
      "stroke-dasharray=\"2 2\"", offsetof(rp_second, oshinko) },
};

static int field(const rp_second *s, size_t offset)
{
    int v;
    memcpy(&v, (const char *)s + offset, sizeof v);
    return v;
}

static void put_escaped(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*s, f);
        }
    }
}

/* A round step for n units over about k ticks. */
static int nice_step(int n, int k)
{
    static const int steps[] = { 1, 2, 5, 10, 15, 20, 30, 60, 120, 300, 600, 900, 1800, 3600,
                                 7200, 14400, 21600, 43200, 86400, 172800, 604800 };
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++)
        if (n / steps[i] <= k)
            return steps[i];
    return n / k + 1;
}

/* Bucket b of the downsampled series: the highest value over its seconds
 * (-1 = none known). */
static int bucket_max(const rp_second *s, size_t n, size_t per, size_t b, size_t offset)
{
    int m = -1;
    for (size_t i = b * per; i < (b + 1) * per && i < n; i++) {
        int v = field(&s[i], offset);
        if (v > m)
            m = v;
    }
    return m;
}

int rp_svg_write(const char *path, const rp_second *s, size_t n, const char *title,
                 const char *subtitle)
{
    if (n == 0) {
        errno = EINVAL;
        return -1;
    }
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    size_t per = (n + MAX_POINTS - 1) / MAX_POINTS, nb = (n + per - 1) / per;
    int ymax = 1;
    for (size_t i = 0; i < n; i++) {
        int vals[] = { s[i].need, s[i].recommended, s[i].desired, s[i].current, s[i].oshinko };
        for (size_t k = 0; k < sizeof vals / sizeof vals[0]; k++)
            if (vals[k] > ymax)
                ymax = vals[k];
    }
    int ystep = nice_step(ymax, 8);
    ymax = (ymax / ystep + 1) * ystep;
    const double pw = W - ML - MR, ph = H - MT - MB;
    const double xs = pw / (double)nb, ys = ph / (double)ymax;
#define X(b) (ML + (double)(b) * xs)
#define Y(v) (MT + ph - (double)(v) * ys)

    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
               "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
               "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"12\">\n", W, H, W, H);
    fprintf(f, "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n", W, H);
    fputs("<text x=\"12\" y=\"22\" font-size=\"16\" font-weight=\"bold\">", f);
    put_escaped(f, title);
    fputs("</text>\n", f);
    /* the summary, one part a line */
    const char *p = subtitle;
    for (int line = 0; p && *p && line < 3; line++) {
        const char *bar = strstr(p, " | ");
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        char buf[512];
        snprintf(buf, sizeof buf, "%.*s", (int)(len < sizeof buf ? len : sizeof buf - 1), p);
        fprintf(f, "<text x=\"12\" y=\"%d\" fill=\"#333\">", 40 + 14 * line);
        put_escaped(f, buf);
        fputs("</text>\n", f);
        p = bar ? bar + 3 : NULL;
    }

    /* the window's holds */
    fputs("<g fill=\"#ffe8a3\" stroke=\"none\">\n", f);
    for (size_t b = 0; b < nb;) {
        if (bucket_max(s, n, per, b, offsetof(rp_second, held)) < 1) {
            b++;
            continue;
        }
        size_t e = b;
        while (e < nb && bucket_max(s, n, per, e, offsetof(rp_second, held)) > 0)
            e++;
        fprintf(f, "<rect x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"%.1f\"/>\n", X(b), MT,
                X(e) - X(b), ph);
        b = e;
    }
    fputs("</g>\n", f);

    /* grid and axes */
    fputs("<g stroke=\"#ddd\" stroke-width=\"1\">\n", f);
    for (int v = 0; v <= ymax; v += ystep)
        fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", ML, Y(v), X(nb),
                Y(v));
    fputs("</g>\n<g fill=\"#333\" text-anchor=\"end\">\n", f);
    for (int v = 0; v <= ymax; v += ystep)
        fprintf(f, "<text x=\"%d\" y=\"%.1f\">%d</text>\n", ML - 6, Y(v) + 4, v);
    fputs("</g>\n", f);
    int xstep = nice_step((int)n, 12);
    fputs("<g fill=\"#333\" text-anchor=\"middle\">\n", f);
    for (size_t t = 0; t < n; t += (size_t)xstep) {
        double x = ML + (double)t / (double)per * xs;
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#999\"/>\n",
                x, MT + ph, x, MT + ph + 4);
        if (xstep % 60 == 0 && n > 600)
            fprintf(f, "<text x=\"%.1f\" y=\"%.1f\">%zu min</text>\n", x, MT + ph + 17, t / 60);
        else
            fprintf(f, "<text x=\"%.1f\" y=\"%.1f\">%zu s</text>\n", x, MT + ph + 17, t);
    }
    fputs("</g>\n", f);
    fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" "
               "stroke=\"#666\"/>\n", ML, MT, pw, ph);
    fprintf(f, "<text x=\"14\" y=\"%.1f\" transform=\"rotate(-90 14 %.1f)\" "
               "text-anchor=\"middle\" fill=\"#333\">workers</text>\n",
            MT + ph / 2, MT + ph / 2);

    /* demand, in workers, as an area */
    fprintf(f, "<path fill=\"#cfcfcf\" fill-opacity=\"0.7\" stroke=\"#9a9a9a\" d=\"M%.1f %.1f",
            X(0), Y(0));
    for (size_t b = 0; b < nb; b++) {
        int v = bucket_max(s, n, per, b, offsetof(rp_second, need));
        fprintf(f, " V%.1f H%.1f", Y(v < 0 ? 0 : v), X(b + 1));
    }
    fprintf(f, " V%.1f Z\"/>\n", Y(0));

    /* the step lines; unknown stretches (-1) are gaps */
    for (size_t k = 0; k < sizeof lines / sizeof lines[0]; k++) {
        fprintf(f, "<path %s d=\"", lines[k].style);
        int pen = 0;
        for (size_t b = 0; b < nb; b++) {
            int v = bucket_max(s, n, per, b, lines[k].offset);
            if (v < 0) {
                pen = 0;
                continue;
            }
            if (!pen)
                fprintf(f, "M%.1f %.1f", X(b), Y(v));
            else
                fprintf(f, " V%.1f", Y(v));
            fprintf(f, " H%.1f", X(b + 1));
            pen = 1;
        }
        fputs("\"/>\n", f);
    }

    /* legend */
    double lx = W - MR + 16, ly = MT + 8;
    fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"22\" height=\"10\" fill=\"#cfcfcf\" "
               "stroke=\"#9a9a9a\"/><text x=\"%.1f\" y=\"%.1f\">demand (workers)</text>\n",
            lx, ly, lx + 28, ly + 9);
    for (size_t k = 0; k < sizeof lines / sizeof lines[0]; k++) {
        ly += 20;
        fprintf(f, "<path %s d=\"M%.1f %.1f H%.1f\"/><text x=\"%.1f\" y=\"%.1f\">%s</text>\n",
                lines[k].style, lx, ly + 5, lx + 22, lx + 28, ly + 9, lines[k].name);
    }
    ly += 20;
    fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"22\" height=\"10\" fill=\"#ffe8a3\"/>"
               "<text x=\"%.1f\" y=\"%.1f\">scale-down held</text>\n"
               "<text x=\"%.1f\" y=\"%.1f\">by the window</text>\n",
            lx, ly, lx + 28, ly + 9, lx + 28, ly + 23);
#undef X
#undef Y
    fputs("</svg>\n", f);
    if (ferror(f)) {
        int e = errno ? errno : EIO;
        fclose(f);
        errno = e;
        return -1;
    }
    return fclose(f) == 0 ? 0 : -1;
}
