#ifndef KVM_LAUNCH_CLIBVIRT_SHIM_H
#define KVM_LAUNCH_CLIBVIRT_SHIM_H

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#endif
