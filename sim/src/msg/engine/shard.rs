//! The node side of a chunk: a shard's queue and what its nodes' events
//! do (dispatch, the connection handshake and close, routing of the mesh's
//! outputs, dials). A shard touches only its own nodes; what it sends to
//! another shard's nodes is handed over when its chunk ends
//! (see `sched`).

use super::*;

impl Shard {
    pub(super) fn node(&self, i: u32) -> &Node {
        debug_assert_eq!(self.place.shard[i as usize], self.idx);
        &self.nodes[self.place.slot[i as usize] as usize]
    }

    pub(super) fn node_mut(&mut self, i: u32) -> &mut Node {
        debug_assert_eq!(self.place.shard[i as usize], self.idx);
        &mut self.nodes[self.place.slot[i as usize] as usize]
    }

    /// Queues an event for one of this shard's nodes.
    pub(super) fn enqueue(&mut self, key: Key, ev: Ev) {
        let slot = match self.free.pop() {
            Some(s) => {
                self.slab[s as usize] = Some(ev);
                s
            }
            None => {
                self.slab.push(Some(ev));
                (self.slab.len() - 1) as u32
            }
        };
        self.heap.push(Reverse((key, slot)));
    }

    /// The time of the earliest queued event of this shard.
    pub(super) fn next_time(&self) -> Option<Ns> {
        self.heap.peek().map(|Reverse(((t, _, _), _))| *t)
    }

    /// Queues an event `src` emits: into this shard's queue if it is for
    /// one of its nodes, else into the outbox (for another shard:
    /// never sooner than the lookahead from this one).
    pub(super) fn push(&mut self, src: u32, at: Ns, ev: Ev) {
        let now = self.now;
        let n = self.node_mut(src);
        n.emitted += 1;
        let key = (at.max(now), src, n.emitted);
        let to = ev.target();
        let k = self.place.shard[to as usize];
        if k == self.idx {
            self.enqueue(key, ev);
        } else {
            assert!(
                key.0 >= now.saturating_add(self.la[k as usize]),
                "node {src} affects node {to} of another shard within the lookahead"
            );
            self.out_min = self.out_min.min(key.0);
            self.out[k as usize].push((key, ev));
        }
    }

    /// Runs this shard's events before `wend`, at most `budget` of them.
    pub(super) fn run_window(&mut self, w: &World, budget: u32) {
        let mut left = budget;
        while let Some(Reverse((key, slot))) = self.heap.peek().copied() {
            let t = key.0;
            if t >= self.wend || left == 0 {
                break;
            }
            left -= 1;
            self.heap.pop();
            self.free.push(slot);
            let Some(ev) = self.slab[slot as usize].take() else {
                continue;
            };
            self.now = t;
            self.last = key;
            self.events += 1;
            self.dispatch(w, ev);
        }
    }

    pub(super) fn dispatch(&mut self, w: &World, ev: Ev) {
        match ev {
            Ev::Join { node } => {
                // Unless it joined already (at the time of a global event,
                // which ran it first) or left since.
                let n = self.node(node);
                if n.mesh.is_none() && n.inc == 0 {
                    let mesh = w.new_mesh(node, 0, self.now);
                    self.start_node(w, node, mesh, self.now);
                }
            }
            Ev::Timer { node, inc } => {
                let now = self.now;
                let n = self.node_mut(node);
                if n.inc == inc && n.mesh.is_some() && n.timer_at == Some(now) {
                    n.timer_at = None;
                    self.feed(w, node, InEvent::Tick);
                }
            }
            Ev::Syn {
                to,
                from,
                gen,
                finc,
                tinc,
            } => self.on_syn(w, to, from, gen, finc, tinc),
            Ev::SynAck {
                to,
                from,
                gen,
                tinc,
                finc,
            } => self.on_syn_ack(w, to, from, gen, tinc, finc),
            Ev::Rst {
                to,
                from,
                tinc,
                gen,
            } => {
                if !w.live(to, tinc, self.now) {
                    return;
                }
                let n = self.node_mut(to);
                match n.ends.get(&from) {
                    Some(e) if e.gen == gen && e.state == EndState::Dialing => {
                        n.ends.remove(&from);
                    }
                    None => {}
                    Some(_) => return,
                }
                let peer = w.topo.ids[from as usize];
                self.feed(w, to, InEvent::DialFailed { peer });
            }
            Ev::Est { to, from, gen } => {
                self.usable(w, to, from, gen);
            }
            Ev::DialFailed { node, inc, peer } => {
                if w.live(node, inc, self.now) {
                    let peer = w.topo.ids[peer as usize];
                    self.feed(w, node, InEvent::DialFailed { peer });
                }
            }
            Ev::Down {
                to,
                from,
                gen,
                inc,
                local,
            } => {
                if !w.live(to, inc, self.now) {
                    return;
                }
                let n = self.node_mut(to);
                let notify = if local {
                    // The closer learns at once unless it is connected
                    // again.
                    !n.ends.get(&from).is_some_and(|e| e.state == EndState::Up)
                } else {
                    match n.ends.get(&from) {
                        Some(e) if e.gen == gen => {
                            let up = e.state == EndState::Up;
                            n.ends.remove(&from);
                            up
                        }
                        _ => false,
                    }
                };
                if notify {
                    let peer = w.topo.ids[from as usize];
                    self.feed(w, to, InEvent::PeerDown { peer });
                }
            }
            Ev::Msg { to, from, gen, msg } => {
                if self.usable(w, to, from, gen) {
                    let peer = w.topo.ids[from as usize];
                    self.feed(w, to, InEvent::Message { peer, msg });
                }
            }
            Ev::Req {
                to,
                from,
                gen,
                rid,
                req,
            } => {
                if self.usable(w, to, from, gen) {
                    let peer = w.topo.ids[from as usize];
                    self.feed(w, to, InEvent::Request { peer, id: rid, req });
                }
                // Otherwise the request is lost: ReqTimeout answers it.
            }
            Ev::Resp {
                to,
                from,
                gen,
                rid,
                result,
            } => {
                if !self.node(to).pending.contains_key(&rid) || !self.usable(w, to, from, gen) {
                    return;
                }
                if let Some(p) = self.node_mut(to).pending.remove(&rid) {
                    if w.live(to, p.inc, self.now) {
                        self.feed(w, to, InEvent::Response { id: p.oid, result });
                    }
                }
            }
            Ev::ReqTimeout { node, rid } => {
                if let Some(p) = self.node_mut(node).pending.remove(&rid) {
                    if w.live(node, p.inc, self.now) {
                        self.feed(
                            w,
                            node,
                            InEvent::Response {
                                id: p.oid,
                                result: Err(RequestFailed::Failed),
                            },
                        );
                    }
                }
            }
        }
    }

    /// A dial from `a` reaches `b`.
    pub(super) fn on_syn(&mut self, w: &World, b: u32, a: u32, gen: u64, ainc: u32, binc: u32) {
        let rtt = w.topo.rtt_ns(a, b);
        let back = rtt - rtt / 2;
        if !w.live(b, binc, self.now) {
            self.push(
                b,
                self.now + back,
                Ev::Rst {
                    to: a,
                    from: b,
                    tinc: ainc,
                    gen,
                },
            );
            return;
        }
        if !w.live(a, ainc, self.now) {
            return;
        }
        let accept = match self.node(b).ends.get(&a) {
            None => true,
            // Both dialed: the lower index's dial wins, at both ends.
            Some(e) if e.state == EndState::Dialing => a < b,
            // An earlier incarnation's connection, or a dial the dialer
            // gave up: replaced.
            Some(e) if e.pinc != ainc || e.state == EndState::Accepted => true,
            // Open from this incarnation: this is the losing dial of a
            // simultaneous pair, which `a` gave up.
            Some(_) => false,
        };
        if accept {
            self.node_mut(b).ends.insert(
                a,
                End {
                    gen,
                    state: EndState::Accepted,
                    pinc: ainc,
                    sent: 0,
                },
            );
            self.push(
                b,
                self.now + back,
                Ev::SynAck {
                    to: a,
                    from: b,
                    gen,
                    tinc: ainc,
                    finc: binc,
                },
            );
        }
    }

    /// `b` accepted `a`'s dial.
    pub(super) fn on_syn_ack(&mut self, w: &World, a: u32, b: u32, gen: u64, ainc: u32, binc: u32) {
        if !w.live(a, ainc, self.now) {
            return;
        }
        let peer = w.topo.ids[b as usize];
        let (mine, none) = {
            let e = self.node(a).ends.get(&b);
            (
                e.is_some_and(|e| e.gen == gen && e.state == EndState::Dialing),
                e.is_none(),
            )
        };
        if !w.live(b, binc, self.now) {
            // The acceptor left meanwhile.
            if mine {
                self.node_mut(a).ends.remove(&b);
            }
            if mine || none {
                self.feed(w, a, InEvent::DialFailed { peer });
            }
            return;
        }
        let d = w.topo.rtt_ns(a, b) / 2;
        if !mine {
            // `a` gave the dial up (or took `b`'s instead): close it.
            if none {
                self.feed(w, a, InEvent::DialFailed { peer });
            }
            self.push(
                a,
                self.now + d,
                Ev::Down {
                    to: b,
                    from: a,
                    gen,
                    inc: binc,
                    local: false,
                },
            );
            return;
        }
        if let Some(e) = self.node_mut(a).ends.get_mut(&b) {
            e.state = EndState::Up;
        }
        let info = w.info(b, true);
        self.feed(w, a, InEvent::PeerUp { peer, info });
        let still = self
            .node(a)
            .ends
            .get(&b)
            .is_some_and(|e| e.gen == gen && e.state == EndState::Up);
        if still {
            self.push(
                a,
                self.now + d,
                Ev::Est {
                    to: b,
                    from: a,
                    gen,
                },
            );
        }
    }

    /// Is connection `gen` open at `to` for traffic from `from`? An
    /// accepted connection opens (`PeerUp`) with the dialer's first packet
    /// or its handshake, whichever comes first.
    pub(super) fn usable(&mut self, w: &World, to: u32, from: u32, gen: u64) -> bool {
        let state = match self.node(to).ends.get(&from) {
            Some(e) if e.gen == gen => e.state,
            _ => return false,
        };
        match state {
            EndState::Up => true,
            EndState::Dialing => false,
            EndState::Accepted => {
                if let Some(e) = self.node_mut(to).ends.get_mut(&from) {
                    e.state = EndState::Up;
                }
                let peer = w.topo.ids[from as usize];
                let info = w.info(from, false);
                self.feed(w, to, InEvent::PeerUp { peer, info });
                self.node(to)
                    .ends
                    .get(&from)
                    .is_some_and(|e| e.gen == gen && e.state == EndState::Up)
            }
        }
    }

    /// Node `i` comes online with `mesh` at `now`, and emits its first
    /// outputs.
    pub(super) fn start_node(&mut self, w: &World, i: u32, mesh: Box<Mesh>, now: Ns) {
        let n = self.node_mut(i);
        n.mesh = Some(mesh);
        n.timer_at = None;
        n.online_since = now;
        self.drain(w, i);
    }

    /// Hands one input to a node and routes what it emits.
    pub(super) fn feed(&mut self, w: &World, node: u32, ev: InEvent) {
        let now = dur(self.now);
        if let Some(m) = self.node_mut(node).mesh.as_mut() {
            m.handle(now, ev);
        }
        self.drain(w, node);
    }

    /// The delivery delay of the next message from `from` to `to` on their
    /// connection, or None if it is lost (or there is no open connection).
    pub(super) fn transit(&mut self, w: &World, from: u32, to: u32) -> Option<(u64, Ns)> {
        let end = self
            .node_mut(from)
            .ends
            .get_mut(&to)
            .filter(|e| e.state == EndState::Up)?;
        end.sent += 1;
        let n = end.sent;
        let gen = end.gen;
        let h = mix(
            mix(
                w.p.seed ^ 0x7472_616e,
                (u64::from(from) << 32) | u64::from(to),
            ),
            n,
        );
        if w.p.loss > 0.0 && ((h >> 11) as f64 / (1u64 << 53) as f64) < w.p.loss {
            self.m.lost += 1;
            return None;
        }
        let one_way = w.topo.rtt_ns(from, to) / 2 + (h & 0xFFFF_FFFF) % JITTER_NS;
        Some((gen, one_way))
    }

    pub(super) fn account(&mut self, w: &World, node: u32, kind: Kind, bytes: u64) {
        let now = self.now;
        self.m.sent(now, kind, bytes, now >= w.warmup);
        if now >= w.warmup {
            self.node_mut(node).window_bytes += bytes;
        }
    }

    pub(super) fn drain(&mut self, w: &World, node: u32) {
        while let Some(out) = self.node_mut(node).mesh.as_mut().and_then(|m| m.poll()) {
            self.route(w, node, out);
        }
        self.reschedule(node);
    }

    pub(super) fn reschedule(&mut self, node: u32) {
        let now = self.now;
        let n = self.node(node);
        let Some(t) = n.mesh.as_ref().and_then(|m| m.poll_timeout()) else {
            return;
        };
        let t = (t.as_nanos() as Ns).max(now);
        if n.timer_at.is_some_and(|s| s <= t) {
            return;
        }
        let inc = n.inc;
        self.node_mut(node).timer_at = Some(t);
        self.push(node, t, Ev::Timer { node, inc });
    }

    pub(super) fn route(&mut self, w: &World, node: u32, out: OutEvent) {
        let now = self.now;
        match out {
            OutEvent::Push { peer, msg } => {
                let Some(to) = w.topo.index.get(&peer).copied() else {
                    return;
                };
                let kind = match &msg {
                    MeshMessage::RoutingDiff(_) => Kind::Diff,
                    MeshMessage::InitialMapSync(_) => Kind::Sync,
                    MeshMessage::MapSyncRequest(_) => Kind::SyncRequest,
                };
                let bytes = self.sizes.push(&msg);
                self.account(w, node, kind, bytes);
                if let Some((gen, delay)) = self.transit(w, node, to) {
                    self.push(
                        node,
                        now + delay,
                        Ev::Msg {
                            to,
                            from: node,
                            gen,
                            msg,
                        },
                    );
                }
            }
            OutEvent::Request {
                peer,
                id,
                req,
                timeout,
            } => {
                let Some(to) = w.topo.index.get(&peer).copied() else {
                    return;
                };
                let bytes = self.sizes.request(&req);
                let kind = match &req {
                    MeshRequest::Worm(w) => {
                        self.recs.push(Rec::Worm {
                            t: now,
                            node,
                            worm: w.worm_id,
                            first: w.targets.first().copied(),
                            forward: true,
                        });
                        Kind::WormRequest
                    }
                    MeshRequest::Query(q) => {
                        self.recs.push(Rec::Worm {
                            t: now,
                            node,
                            worm: q.worm_id,
                            first: q.targets.first().copied(),
                            forward: false,
                        });
                        Kind::WormQuery
                    }
                    MeshRequest::Address(_) => Kind::AddressRequest,
                };
                self.account(w, node, kind, bytes);
                let n = self.node_mut(node);
                n.requests += 1;
                // The originator's index in the high half: the responder
                // routes the answer by it.
                let rid = (u64::from(node) << 32) | (n.requests & 0xFFFF_FFFF);
                let inc = n.inc;
                n.pending.insert(rid, Pending { inc, oid: id });
                self.push(
                    node,
                    now + timeout.as_nanos() as Ns,
                    Ev::ReqTimeout { node, rid },
                );
                if let Some((gen, delay)) = self.transit(w, node, to) {
                    self.push(
                        node,
                        now + delay,
                        Ev::Req {
                            to,
                            from: node,
                            gen,
                            rid,
                            req,
                        },
                    );
                }
            }
            OutEvent::Respond { id, result } => {
                let bytes = self.sizes.response(&result);
                let kind = match &result {
                    Ok(MeshResponse::Worm(_)) => Kind::WormResponse,
                    Ok(MeshResponse::Address(_)) => Kind::AddressResponse,
                    Err(r) => {
                        match r {
                            Refusal::RateLimited(_) => self.m.refused_rate_limited += 1,
                            Refusal::Malformed(_) | Refusal::TooLarge(_) => {
                                self.m.refused_malformed += 1
                            }
                        }
                        Kind::Error
                    }
                };
                self.account(w, node, kind, bytes);
                let origin = (id >> 32) as u32;
                let result = result.map_err(|_| RequestFailed::Refused);
                if let Some((gen, delay)) = self.transit(w, node, origin) {
                    self.push(
                        node,
                        now + delay,
                        Ev::Resp {
                            to: origin,
                            from: node,
                            gen,
                            rid: id,
                            result,
                        },
                    );
                }
            }
            OutEvent::Connect { peer, .. } => {
                if let Some(b) = w.topo.index.get(&peer).copied() {
                    self.dial(w, node, b);
                }
            }
            OutEvent::Disconnect { peer } => {
                if let Some(b) = w.topo.index.get(&peer).copied() {
                    self.close(w, node, b);
                }
            }
            OutEvent::Event(MeshEvent::LookupDone(o)) => {
                if o.id >= LOOKUP_BASE {
                    let found = o.found.as_ref().is_some_and(|(p, _)| p.node_id == o.target);
                    self.recs.push(Rec::Done {
                        t: now,
                        node,
                        id: o.id,
                        done: LookupDone {
                            found,
                            tier: o.found.as_ref().map(|(_, t)| t.as_str()),
                            hops: o.hops,
                            messages: o.messages,
                            elapsed: o.elapsed,
                        },
                    });
                }
            }
        }
    }

    pub(super) fn dial(&mut self, w: &World, a: u32, b: u32) {
        if a == b || self.node(a).ends.contains_key(&b) {
            return;
        }
        let now = self.now;
        let ainc = self.node(a).inc;
        if !w.online(b, now) {
            self.push(
                a,
                now + DIAL_TIMEOUT,
                Ev::DialFailed {
                    node: a,
                    inc: ainc,
                    peer: b,
                },
            );
            return;
        }
        let binc = w.inc(b);
        let n = self.node_mut(a);
        n.dials += 1;
        let gen = (u64::from(a) << 32) | (n.dials & 0xFFFF_FFFF);
        n.ends.insert(
            b,
            End {
                gen,
                state: EndState::Dialing,
                pinc: binc,
                sent: 0,
            },
        );
        let d = w.topo.rtt_ns(a, b) / 2;
        self.push(
            a,
            now + d,
            Ev::Syn {
                to: b,
                from: a,
                gen,
                finc: ainc,
                tinc: binc,
            },
        );
    }

    /// `a` closes its connection to `b`: `a` learns at once, `b` after the
    /// one-way delay.
    pub(super) fn close(&mut self, w: &World, a: u32, b: u32) {
        let now = self.now;
        let ainc = self.node(a).inc;
        let Some(e) = self.node_mut(a).ends.remove(&b) else {
            return;
        };
        let d = w.topo.rtt_ns(a, b) / 2;
        let remote = Ev::Down {
            to: b,
            from: a,
            gen: e.gen,
            inc: e.pinc,
            local: false,
        };
        match e.state {
            // The SynAck finds no dial and closes the acceptor's end.
            EndState::Dialing => {}
            EndState::Accepted => self.push(a, now + d, remote),
            EndState::Up => {
                self.push(
                    a,
                    now,
                    Ev::Down {
                        to: a,
                        from: b,
                        gen: e.gen,
                        inc: ainc,
                        local: true,
                    },
                );
                self.push(a, now + d, remote);
            }
        }
    }
}
