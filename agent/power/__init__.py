"""The classroom PC's own power: its network cards for Wake-on-LAN, wake times, OS shutdown and reboot."""
