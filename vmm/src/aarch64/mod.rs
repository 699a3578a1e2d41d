//! aarch64 guests of ktstr's own VMM. Only the device tree exists so far:
//! it is data, compiled and tested on every host; running aarch64 guests
//! needs an aarch64 host with KVM.

pub mod fdt;
