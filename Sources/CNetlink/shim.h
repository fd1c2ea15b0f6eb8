#ifndef KVM_LAUNCH_CNETLINK_SHIM_H
#define KVM_LAUNCH_CNETLINK_SHIM_H

#include <netlink/netlink.h>
#include <netlink/socket.h>
#include <netlink/cache.h>
#include <netlink/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/addr.h>
#include <netlink/route/route.h>
#include <netlink/route/nexthop.h>
#include <netlink/route/link/macvlan.h>
#include <netlink/route/link/macvtap.h>
#include <netlink/route/link/bridge.h>
#include <netlink/route/link/vlan.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/link/inet6.h>
#include <linux/if_link.h>
#include <linux/if.h>
#include <linux/if_arp.h>
#include <linux/rtnetlink.h>

#include <sys/syscall.h>
#include <unistd.h>

/* setns(2) for network namespaces without needing _GNU_SOURCE in Swift's Glibc module. */
static inline int cnetlink_enter_netns(int fd) {
    return (int)syscall(SYS_setns, fd, 0x40000000 /* CLONE_NEWNET */);
}

/* The calling thread's id (gettid(2) is not visible to Swift's Glibc module). */
static inline int cnetlink_thread_id(void) {
    return (int)syscall(SYS_gettid);
}

/* libnl turns the kernel's errno into its own NLE_* code and drops the errno. This error callback keeps
 * it: it stores the errno of the last NLMSG_ERROR into *slot and lets libnl carry on as it would. */
static int cnetlink_record_errno(struct sockaddr_nl *peer, struct nlmsgerr *error, void *slot) {
    (void)peer;
    *(int *)slot = error->error < 0 ? -error->error : error->error;
    return NL_STOP;
}

static inline int cnetlink_keep_errno(struct nl_sock *socket, int *slot) {
    return nl_socket_modify_err_cb(socket, NL_CB_CUSTOM, cnetlink_record_errno, slot);
}

#include <netlink/msg.h>
#include <netlink/attr.h>

/* One RTM_DELLINK for every link in a link group (IFLA_GROUP, no index): the kernel unregisters them
 * together, with one RCU grace period instead of one per link. libnl has no call for it. */
static inline int cnetlink_delete_link_group(struct nl_sock *socket, uint32_t group) {
    struct nl_msg *message = nlmsg_alloc_simple(RTM_DELLINK, 0);
    if (!message) return -NLE_NOMEM;
    struct ifinfomsg header = { .ifi_family = AF_UNSPEC };
    int result = nlmsg_append(message, &header, sizeof(header), NLMSG_ALIGNTO);
    if (result >= 0) result = nla_put_u32(message, IFLA_GROUP, group);
    if (result >= 0) result = nl_send_auto(socket, message);
    nlmsg_free(message);
    if (result < 0) return result;
    return nl_wait_for_ack(socket);
}

/* Adding a link with NLM_F_ECHO: the kernel (6.2 and later) answers with the new link's RTM_NEWLINK
 * before its acknowledgement, which gives its index without a lookup. *index stays 0 when the kernel
 * sends no echo. Returns 0, or libnl's negative code (the socket's error callback keeps the errno). */
struct cnetlink_echo { int index; int acked; };

static int cnetlink_echo_valid(struct nl_msg *message, void *argument) {
    struct nlmsghdr *header = nlmsg_hdr(message);
    if (header->nlmsg_type == RTM_NEWLINK && nlmsg_datalen(header) >= (int)sizeof(struct ifinfomsg)) {
        struct ifinfomsg *info = nlmsg_data(header);
        ((struct cnetlink_echo *)argument)->index = info->ifi_index;
    }
    return NL_OK;
}

static int cnetlink_echo_acked(struct nl_msg *message, void *argument) {
    (void)message;
    ((struct cnetlink_echo *)argument)->acked = 1;
    return NL_STOP;
}

static int cnetlink_echo_any_sequence(struct nl_msg *message, void *argument) {
    (void)message; (void)argument;
    return NL_OK;
}

static inline int cnetlink_add_link_echo(struct nl_sock *socket, struct rtnl_link *link, int flags, int *index) {
    struct nl_msg *message = NULL;
    *index = 0;
    int result = rtnl_link_build_add_request(link, flags | NLM_F_ECHO, &message);
    if (result < 0) return result;
    result = nl_send_auto(socket, message);
    nlmsg_free(message);
    if (result < 0) return result;
    struct nl_cb *base = nl_socket_get_cb(socket);
    struct nl_cb *callbacks = base ? nl_cb_clone(base) : NULL;
    if (base) nl_cb_put(base);
    if (!callbacks) return -NLE_NOMEM;
    struct cnetlink_echo echo = { 0, 0 };
    /* The echo is a notification: whatever its sequence number, it answers the one request in flight. */
    nl_cb_set(callbacks, NL_CB_SEQ_CHECK, NL_CB_CUSTOM, cnetlink_echo_any_sequence, NULL);
    nl_cb_set(callbacks, NL_CB_VALID, NL_CB_CUSTOM, cnetlink_echo_valid, &echo);
    nl_cb_set(callbacks, NL_CB_ACK, NL_CB_CUSTOM, cnetlink_echo_acked, &echo);
    result = 0;
    while (!echo.acked && result >= 0) result = nl_recvmsgs(socket, callbacks);
    nl_cb_put(callbacks);
    if (result < 0) return result;
    *index = echo.index;
    return 0;
}

#endif
