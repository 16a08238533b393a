/* hello.c - the README's minimal program; CI builds it outside the tree against the installed library. */
#include <stdio.h>
#include <clai.h>

int main(void) {
  clai_context *ctx;
  char err[1024];
  if (clai_context_init_ex(&ctx, NULL, err, sizeof err) != CLAI_OK) {  /* NULL: the best device */
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  float a[6] = {1, 2, 3, 4, 5, 6}, b[6] = {1, 0, 0, 1, 1, 1}, c[4];
  int64_t sa[2] = {2, 3}, sb[2] = {3, 2}, sc[2] = {2, 2};
  clai_tensor *ta, *tb, *tc;
  clai_tensor_init(ctx, &ta, CLAI_DTYPE_F32, 2, sa);
  clai_tensor_init(ctx, &tb, CLAI_DTYPE_F32, 2, sb);
  clai_tensor_init(ctx, &tc, CLAI_DTYPE_F32, 2, sc);
  clai_tensor_write(ta, a, sizeof a);
  clai_tensor_write(tb, b, sizeof b);
  clai_status st = clai_matmul(ctx, tc, ta, 0, tb, 0, 1.0f, 0.0f);   /* C = A B, enqueued */
  if (st == CLAI_OK) st = clai_unary(ctx, CLAI_RELU, tc, tc);        /* in place */
  if (st == CLAI_OK) st = clai_tensor_read(tc, c, sizeof c);         /* waits for the result */
  if (st != CLAI_OK) fprintf(stderr, "%s: %s\n", clai_status_name(st), clai_errmsg(ctx));
  else printf("%g %g\n%g %g\n", c[0], c[1], c[2], c[3]);
  clai_context_free(ctx);   /* also frees the tensors still alive */
  return st != CLAI_OK;
}
