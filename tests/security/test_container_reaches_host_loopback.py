"""Attack (CVE-2020-8558's pattern): box bridges have ``route_localnet=1`` (published
ports on 127.0.0.1 need it), so a container with NET_RAW that writes a frame to its
gateway's MAC addressed to 127.0.0.1 reaches services the host bound to loopback only
(influxd, Prometheus). The nft ``box`` table drops 127.0.0.0/8 arriving on box bridges."""

from __future__ import annotations

import socket
import time
import uuid
from pathlib import Path

from tests.conftest import Box
from tests.security.conftest import gcc

# argv: ifname, gateway MAC (aa:bb:..), source IPv4, destination port, payload.
PROBE = r"""
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
static unsigned short csum(void *data, int len) {
    unsigned long sum = 0; unsigned short *p = data;
    for (; len > 1; len -= 2) sum += *p++;
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return ~sum;
}
int main(int argc, char **argv) {
    int s = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_IP));
    if (s < 0) { perror("socket"); return 2; }
    struct ifreq ifr = {0};
    strncpy(ifr.ifr_name, argv[1], IFNAMSIZ - 1);
    if (ioctl(s, SIOCGIFINDEX, &ifr) < 0) { perror("ifindex"); return 2; }
    int ifindex = ifr.ifr_ifindex;
    if (ioctl(s, SIOCGIFHWADDR, &ifr) < 0) { perror("hwaddr"); return 2; }
    unsigned char frame[1500] = {0}, gw[6];
    sscanf(argv[2], "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx",
           &gw[0], &gw[1], &gw[2], &gw[3], &gw[4], &gw[5]);
    struct ether_header *eth = (void *)frame;
    memcpy(eth->ether_dhost, gw, 6);
    memcpy(eth->ether_shost, ifr.ifr_hwaddr.sa_data, 6);
    eth->ether_type = htons(ETH_P_IP);
    struct iphdr *ip = (void *)(frame + sizeof *eth);
    struct udphdr *udp = (void *)((char *)ip + sizeof *ip);
    int plen = strlen(argv[5]);
    memcpy((char *)udp + sizeof *udp, argv[5], plen);
    ip->version = 4; ip->ihl = 5; ip->ttl = 64; ip->protocol = IPPROTO_UDP;
    ip->tot_len = htons(sizeof *ip + sizeof *udp + plen);
    ip->saddr = inet_addr(argv[3]); ip->daddr = inet_addr("127.0.0.1");
    ip->check = csum(ip, sizeof *ip);
    udp->source = htons(40000); udp->dest = htons(atoi(argv[4]));
    udp->len = htons(sizeof *udp + plen);
    struct sockaddr_ll to = {.sll_family = AF_PACKET, .sll_ifindex = ifindex, .sll_halen = 6};
    memcpy(to.sll_addr, gw, 6);
    int len = sizeof *eth + sizeof *ip + sizeof *udp + plen;
    for (int i = 0; i < 5; i++) {
        if (sendto(s, frame, len, 0, (void *)&to, sizeof to) != len) { perror("sendto"); return 2; }
        usleep(100000);
    }
    puts("sent");
    return 0;
}
"""


def test_container_cannot_reach_a_host_loopback_listener(box: Box, tmp_path: Path) -> None:
    probe = gcc(tmp_path, "lo_probe", PROBE, "-static")
    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.settimeout(0.2)
    cid = box.ok("run", "-d", "--cap-add", "NET_RAW", "busybox", "sleep", "60").strip()
    try:
        box.ok("cp", str(probe), f"{cid}:/lo_probe")
        ip = box.inspect(cid, "{{.NetworkSettings.IPAddress}}")
        gw_mac = Path(f"/sys/class/net/{box.bridge}/address").read_text().strip()
        payload = f"box-loopback-{uuid.uuid4().hex}"
        out = box.ok("exec", cid, "/lo_probe", "eth0", gw_mac, ip, str(port), payload)
        assert out.strip() == "sent"
        got = []
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            try:
                got.append(listener.recv(4096))
            except TimeoutError:
                continue
    finally:
        listener.close()
    assert payload.encode() not in got, "a container's packet reached 127.0.0.1 on the host"


def test_published_port_on_loopback_still_answers(box: Box) -> None:
    cid = box.ok("run", "-d", "-p", "127.0.0.1::8080", "busybox", "sh", "-c",
                 "echo hi-from-box > /i; httpd -f -p 8080 -h /").strip()
    port = int(box.ok("port", cid, "8080").strip().rsplit(":", 1)[1])
    deadline = time.monotonic() + 10
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as c:
                c.sendall(b"GET /i HTTP/1.0\r\n\r\n")
                data = c.recv(4096)
            if b"hi-from-box" in data:
                break
        except OSError:
            pass
        assert time.monotonic() < deadline, "the published port on 127.0.0.1 does not answer"
        time.sleep(0.2)
