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

#endif
