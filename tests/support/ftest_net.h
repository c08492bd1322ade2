/* Network helpers for ferry's tests (with ftest.h). */
#ifndef FERRY_FTEST_NET_H
#define FERRY_FTEST_NET_H
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include "ftest.h"

/* A loopback port where connecting is refused: bound, not listening, for as long as *fd_out stays open. */
static inline int ft_refused_port(int *fd_out) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {0};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  FT_ASSERT(bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0, "bind");
  socklen_t sl = sizeof sa;
  getsockname(fd, (struct sockaddr *)&sa, &sl);
  *fd_out = fd;
  return ntohs(sa.sin_port);
}
#endif
