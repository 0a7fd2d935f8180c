//! The adversary: within what Microsoft's WSK contract permits, the choices
//! that make a client's life hardest, drawn from a seed.
//!
//! Every [`Behaviour`] names the page that permits (or, for the contract
//! corrections, requires) it. They are switched on together by
//! [`Adversary::all`] and one by one with [`Adversary::with`] /
//! [`Adversary::without`]; a machine uses one through
//! [`Config::adversary`](crate::Config::adversary),
//! [`Config::hostile`](crate::Config::hostile), [`Sim::hostile`](crate::Sim::hostile)
//! or the `WSK_SIM_ADVERSARY` environment variable read by
//! [`Sim::start`](crate::Sim::start).

use core::fmt;

use crate::world::Rng;

/// Whether [`Sim::start`](crate::Sim::start) (and [`Sim::with_seed`](crate::Sim::with_seed))
/// turn the adversary on when `WSK_SIM_ADVERSARY` is not set: yes, every
/// behaviour, seeded with [`DEFAULT_SEED`]. `WSK_SIM_ADVERSARY=off` turns it
/// off for a run; a test that must see one benign path pins its
/// [`Config`](crate::Config) (and says why).
pub const ON_BY_DEFAULT: bool = true;

/// The seed [`Sim::start`](crate::Sim::start) uses when the adversary is on
/// without a seed (`WSK_SIM_ADVERSARY=on`, or by default).
pub const DEFAULT_SEED: u64 = 0x0005_EED0_AD7E;

/// One adversarial behaviour (or contract correction) of the simulator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Behaviour {
    /// `split-indications`: a `WskReceiveEvent` carries a chain of several
    /// `WSK_DATA_INDICATION`s cut at arbitrary byte boundaries (often
    /// 1-byte pieces), and often only a prefix of the buffered bytes, so
    /// the same stream arrives in more callbacks; a `WskReceiveFromEvent`
    /// carries a random number of the queued datagrams.
    /// `BytesIndicated` is the sum of the chain's `Buffer.Length`s.
    /// `DataIndication` is a linked list
    /// ([`WskReceiveEvent`](https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_receive_event),
    /// [`WSK_DATA_INDICATION.Next`](https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/ns-wsk-_wsk_data_indication));
    /// a receive-from event reports one or more datagrams
    /// ([`WskReceiveFromEvent`](https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_receive_from_event)).
    ///
    /// `docs/conformance.md`: A-2, A-16, A-23 (IND-1, RCV-EV-4, DG-EV-1).
    SplitIndications,
    /// `mdl-chains`: every indicated `WSK_BUF` (stream data and each
    /// datagram) spans several MDLs linked by `Mdl->Next`, with MDL
    /// boundaries at arbitrary bytes, a non-zero `Offset` into the first
    /// MDL, unrelated bytes before the data in the first MDL, between the
    /// MDLs' buffers and after the data in the last MDL (a client must
    /// honour `Offset` and `Length`, not `ByteCount` or adjacency).
    /// [`WSK_BUF`](https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/ns-wsk-_wsk_buf):
    /// `Mdl` may be the first MDL of a chain, and `Offset` only has to lie
    /// within the first MDL's buffer; a zero `Length` may come with a NULL
    /// `Mdl` (which the adversary does for empty datagrams).
    ///
    /// `docs/conformance.md`: A-1, A-23 (BUF-1, BUF-2, BUF-3, IND-1, DG-IND-1), M-01.
    MdlChains,
    /// `unmapped-indications`: indicated MDLs describe locked pages that
    /// are not (all) mapped into system space: a client must call
    /// `MmGetSystemAddressForMdlSafe`, never read `MappedSystemVa` or
    /// `StartVa`. [`WSK_BUF`](https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/ns-wsk-_wsk_buf)
    /// promises only that each MDL's memory is locked or non-paged, not
    /// that it is mapped.
    ///
    /// `docs/conformance.md`: A-19 (KRN-MDL-5), M-01.
    UnmappedIndications,
    /// `mapping-failures`: `MmMapLockedPagesSpecifyCache` (which
    /// `MmGetSystemAddressForMdlSafe` calls for an MDL not yet mapped)
    /// returns NULL on a seeded fraction of calls
    /// ([`Adversary::mapping_failures_per_mille`]) made with
    /// `KernelMode` and `BugCheckOnFailure == FALSE`.
    /// Both pages document a NULL return when pages not yet mapped cannot
    /// be mapped:
    /// [`MmGetSystemAddressForMdlSafe`](https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-mmgetsystemaddressformdlsafe),
    /// [`MmMapLockedPagesSpecifyCache`](https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-mmmaplockedpagesspecifycache).
    ///
    /// `docs/conformance.md`: A-19 (KRN-MDL-5), M-01.
    MappingFailures,
    /// `indication-flags`: `WskReceiveEvent` flags also carry
    /// `WSK_FLAG_RELEASE_ASAP` and `WSK_FLAG_ENTIRE_MESSAGE` at random (a
    /// client must test bits, not compare the whole value).
    /// [`WskReceiveEvent` `Flags`](https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_receive_event).
    ///
    /// `docs/conformance.md`: A-6 (RCV-EV-1).
    IndicationFlags,
    /// `completion-mix`: every IRP-based routine completes, at random,
    /// inside the call returning the final status, inside the call
    /// returning `STATUS_PENDING`, or later on another thread.
    /// [Using IRPs with Winsock Kernel Functions](https://learn.microsoft.com/windows-hardware/drivers/network/using-irps-with-winsock-kernel-functions),
    /// each routine's `STATUS_PENDING` return (for example
    /// [`WskSend`](https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_send)).
    /// A mode a test sets with
    /// [`Sim::set_completion_mode`](crate::Sim::set_completion_mode) is left
    /// alone.
    ///
    /// `docs/conformance.md`: A-5 (IRP-12, KRN-IRP-5).
    CompletionMix,
    /// `irql-mix`: each event callback runs at `PASSIVE_LEVEL`,
    /// `APC_LEVEL` or `DISPATCH_LEVEL`; `WSK_FLAG_AT_DISPATCH_LEVEL` is set
    /// only at `DISPATCH_LEVEL` but is sometimes clear there too (a clear
    /// flag promises nothing); completion routines run at any of the three.
    /// Without the flag a callback may run at any IRQL up to
    /// `DISPATCH_LEVEL`
    /// ([`WskReceiveEvent`](https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_receive_event),
    /// and the same words on every event page); completion routines run at
    /// any IRQL up to `DISPATCH_LEVEL`
    /// ([`IoCompletion`](https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nc-wdm-io_completion_routine)).
    /// IRQLs a test sets with [`Sim::set_event_irql`](crate::Sim::set_event_irql)
    /// or [`Sim::set_completion_irql`](crate::Sim::set_completion_irql) are
    /// left alone.
    ///
    /// `docs/conformance.md`: A-3 (EV-GEN-1, EV-GEN-2, EV-GEN-3).
    IrqlMix,
    /// `accept-does-not-inherit` (contract): a socket returned by
    /// `WskAccept` starts with every event callback disabled (only
    /// statically enabled ones stay on); only a socket taken by the
    /// listener's `WskAcceptEvent` inherits the connection events enabled
    /// on the listener. The client enables events on a `WskAccept` socket
    /// with `SO_WSK_EVENT_CALLBACK` on that socket.
    /// [`WskAccept`](https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_accept),
    /// [`SO_WSK_EVENT_CALLBACK`](https://learn.microsoft.com/windows-hardware/drivers/network/so-wsk-event-callback).
    ///
    /// `docs/conformance.md`: A-15 (EVT-9, ACC-5, ACC-EV-6), M-02.
    AcceptDoesNotInherit,
    /// `receive-from-disabled-on-refusal` (contract): a
    /// `WskReceiveFromEvent` answered `STATUS_DATA_NOT_ACCEPTED` disables
    /// the event until `SO_WSK_EVENT_CALLBACK` enables it again (the
    /// datagrams stay buffered for `WskReceiveFrom` and the re-enabled
    /// event); when the event was enabled with
    /// `WSK_SET_STATIC_EVENT_CALLBACKS` it stays enabled and indications
    /// resume with the next datagram.
    /// [`WskReceiveFromEvent`](https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_receive_from_event).
    ///
    /// `docs/conformance.md`: A-14 (DG-EV-4, DG-EV-5), M-03.
    ReceiveFromDisabledOnRefusal,
    /// `socket-failure` (contract): the provider declares a socket no
    /// longer functional — a NULL `InspectID` in `WskInspectEvent`, a NULL
    /// `AcceptSocket` in `WskAcceptEvent`, a NULL indication — on command
    /// ([`Sim::indicate_close_required`](crate::Sim::indicate_close_required))
    /// and, for listening sockets with an inspect or accept event, on a
    /// seeded fraction of incoming connections
    /// ([`Adversary::listener_failures_per_mille`], 0 unless set). Every later call on
    /// the socket but `WskCloseSocket` fails with
    /// `STATUS_FILE_FORCED_CLOSED`, and a socket never closed afterwards is
    /// a [`CLOSE_REQUIRED`](crate::Rule::CloseRequired) violation.
    /// A NULL `InspectID` means the listening socket no longer works and
    /// must be closed
    /// ([`WskInspectEvent`](https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_inspect_event);
    /// likewise a NULL `AcceptSocket` or indication); see the
    /// `STATUS_FILE_FORCED_CLOSED` rows of
    /// [`WskAccept`](https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_accept)
    /// and the other socket routines.
    ///
    /// `docs/conformance.md`: A-11, A-18 (INS-2, ACC-EV-3, IRP-13), M-04, M-17, M-22.
    SocketFailure,
    /// `disable-waits-for-callbacks` (contract): disabling an event callback
    /// with `SO_WSK_EVENT_CALLBACK` while a call to it is in progress
    /// returns `STATUS_PENDING` (with an IRP, completed once the call
    /// returns) or `STATUS_EVENT_PENDING` (without an IRP).
    /// [`SO_WSK_EVENT_CALLBACK`](https://learn.microsoft.com/windows-hardware/drivers/network/so-wsk-event-callback),
    /// [`WskControlSocket`](https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_control_socket).
    ///
    /// `docs/conformance.md`: A-13 (EVT-6, CTL-6), M-23.
    DisableWaitsForCallbacks,
    /// `fixed-events` (contract): statically enabled event callbacks
    /// (`WSK_SET_STATIC_EVENT_CALLBACKS`) cannot be disabled or re-enabled,
    /// and connection events enabled on a listening socket cannot be
    /// disabled there: `SO_WSK_EVENT_CALLBACK` trying is a
    /// [`PARAMETER`](crate::Rule::Parameter) violation and fails with
    /// `STATUS_INVALID_PARAMETER` (Microsoft names no status).
    /// [`WSK_SET_STATIC_EVENT_CALLBACKS`](https://learn.microsoft.com/windows-hardware/drivers/network/wsk-set-static-event-callbacks),
    /// [`SO_WSK_EVENT_CALLBACK`](https://learn.microsoft.com/windows-hardware/drivers/network/so-wsk-event-callback).
    ///
    /// `docs/conformance.md`: EVT-10, CC-STATIC-2, M-12, M-24.
    FixedEvents,
    /// `documented-statuses` (contract): the statuses the pages name where
    /// the simulator used others: a too small `WSK_TRANSPORT_LIST_QUERY`
    /// buffer gets `STATUS_BUFFER_OVERFLOW`
    /// ([page](https://learn.microsoft.com/windows-hardware/drivers/network/wsk-transport-list-query)),
    /// `WskGetRemoteAddress` on a socket not connected
    /// `STATUS_INVALID_DEVICE_STATE`
    /// ([page](https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_get_remote_address)),
    /// `SIO_WSK_QUERY_INSPECT_ID` on a socket not accepted through
    /// conditional accept `STATUS_INVALID_DEVICE_REQUEST` — and passing it an
    /// IRP, which the page says must be NULL, is a
    /// [`PARAMETER`](crate::Rule::Parameter) violation
    /// ([page](https://learn.microsoft.com/windows-hardware/drivers/network/sio-wsk-query-inspect-id)),
    /// `WskConnectEx` data over 65,535 bytes `STATUS_BUFFER_OVERFLOW`
    /// ([page](https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_connect_ex)),
    /// a name `WskGetAddressInfo` or `WskGetNameInfo` cannot resolve
    /// `STATUS_NO_MATCH`
    /// ([page](https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_get_address_info)).
    ///
    /// `docs/conformance.md`: A-20 (CC-TLQ-2, CONNX-2, ADDR-3, SIO-2, NAME-3), M-15, M-23.
    DocumentedStatuses,
    /// `listen-pends`: `WskListen` on a stream socket returns
    /// `STATUS_PENDING` and completes only when the first connection
    /// arrives (or with `STATUS_CANCELLED` when the socket closes or the IRP
    /// is cancelled): the page's `STATUS_PENDING` row reads "waiting for an
    /// incoming connection"
    /// ([`WskListen`](https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_listen)).
    /// A client must not wait for the listen before it can take the first
    /// connection.
    ///
    /// `docs/conformance.md`: A-10 (STR-2, G-13), M-07.
    ListenPends,
    /// `callbacks-race-requests`: at the rate
    /// [`Adversary::rare_events_per_mille`] sets (0 unless set), data,
    /// datagrams and connections go to `WskReceiveEvent`,
    /// `WskReceiveFromEvent` and `WskAcceptEvent` although a `WskReceive`,
    /// `WskReceiveFrom` or `WskAccept` is pending: a pending request takes
    /// precedence, but the pages say the callback can still be called
    /// while one is pending, and only disabling it rules that out
    /// ([`WskReceive`](https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_receive),
    /// [`WskAccept`](https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_accept),
    /// [`WskReceiveFrom`](https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_receive_from)).
    /// Off at the default rate: a client that posts a receive and waits for
    /// it while its callback is enabled would wait for the next data.
    ///
    /// `docs/conformance.md`: A-4 (EV-GEN-7).
    CallbacksRaceRequests,
    /// `graceful-disconnect-stuck`: at the rate
    /// [`Adversary::rare_events_per_mille`] sets (0 unless set), a graceful
    /// `WskDisconnect` never completes on its own ("transmitting fails"):
    /// only an abortive `WskDisconnect` or `WskCloseSocket` completes it
    /// ([`WskDisconnect`](https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_disconnect)).
    ///
    /// `docs/conformance.md`: A-7 (DSC-4).
    GracefulDisconnectStuck,
    /// `abort-after-inspect`: at the rate
    /// [`Adversary::rare_events_per_mille`] sets (0 unless set), a
    /// connection request the client answered `WskInspectAccept` is dropped
    /// by the peer before it is established: `WskAbortEvent` follows
    /// ([`WskAbortEvent`](https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_abort_event),
    /// [`WskInspectEvent`](https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_inspect_event)).
    ///
    /// `docs/conformance.md`: A-9 (INS-3, ABT-1).
    AbortAfterInspect,
    /// `send-backlog-changes`: the ideal send backlog changes now and then
    /// as sends complete, on whatever thread completes them, and
    /// `WskSendBacklogEvent` reports each change where it is enabled
    /// ([`WskSendBacklogEvent`](https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_send_backlog_event)).
    ///
    /// `docs/conformance.md`: A-21 (SBL-EV-1).
    SendBacklogChanges,
    /// `newer-minor-version`: the provider reports a higher minor WSK
    /// version than the client asked for (`WSK_PROVIDER_DISPATCH.Version`;
    /// the table's members are those of the version asked for)
    /// ([`WSK_PROVIDER_DISPATCH`](https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/ns-wsk-_wsk_provider_dispatch)).
    ///
    /// `docs/conformance.md`: A-26 (REG-17).
    NewerMinorVersion,
    /// `control-info`: datagram indications carry control information
    /// (a `CMSGHDR`-headed `IP_PKTINFO`/`IPV6_PKTINFO` object naming the
    /// address the datagram arrived on), and so do `WskReceiveFrom`
    /// requests that give a control buffer, truncated with `MSG_CTRUNC`
    /// when it does not fit
    /// ([`WSK_DATAGRAM_INDICATION`](https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/ns-wsk-_wsk_datagram_indication),
    /// [`WskReceiveFrom`](https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_receive_from)).
    ///
    /// `docs/conformance.md`: A-6 (DG-IND-1, DG-RCV-1).
    ControlInfo,
    /// `late-sends`: a `WskSend` completes only once its bytes fit in the
    /// receiver's window: while more than the receiver's `SO_RCVBUF` (64 KiB
    /// unless it set another) of what the socket sent is still unread at the
    /// other end, the send stays pending, and it completes on whatever thread
    /// reads the bytes there (or fails when the connection resets first).
    /// "The WSK subsystem does not perform any buffering of data when it
    /// sends data over a socket. Therefore, a call to the `WskSend` function
    /// will not be completed by the WSK subsystem until all of the data has
    /// actually been sent"
    /// ([`WskSend`](https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_send),
    /// remarks): a receiver that does not read holds the send up.
    /// A client that waits for its send before it reads what the peer sends
    /// back can deadlock with a peer that does the same, as on a real
    /// network.
    ///
    /// `docs/conformance.md`: A-22 (SND-4).
    LateSends,
    /// `concurrent-accepts`: with two connections waiting to be offered on
    /// a listening socket, both `WskAcceptEvent` callbacks run at once, on
    /// two threads; one time in two the later connection's callback begins
    /// first (the other starts once it has). Microsoft says only of
    /// `WskReceiveEvent` that it is called serially
    /// ([`WskReceiveEvent`](https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_receive_event),
    /// remarks); the accept event's page promises no such thing
    /// ([`WskAcceptEvent`](https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_accept_event)),
    /// so a handler must expect overlapping accepts — and that whatever it
    /// counts or logs in them (a connection number) comes in either order.
    ///
    /// `docs/conformance.md`: A-27 (EV-GEN-6, G-12).
    ConcurrentAccepts,
}

impl Behaviour {
    /// Every behaviour, in declaration order.
    pub const ALL: [Behaviour; 22] = [
        Behaviour::SplitIndications,
        Behaviour::MdlChains,
        Behaviour::UnmappedIndications,
        Behaviour::MappingFailures,
        Behaviour::IndicationFlags,
        Behaviour::CompletionMix,
        Behaviour::IrqlMix,
        Behaviour::AcceptDoesNotInherit,
        Behaviour::ReceiveFromDisabledOnRefusal,
        Behaviour::SocketFailure,
        Behaviour::DisableWaitsForCallbacks,
        Behaviour::FixedEvents,
        Behaviour::DocumentedStatuses,
        Behaviour::ListenPends,
        Behaviour::CallbacksRaceRequests,
        Behaviour::GracefulDisconnectStuck,
        Behaviour::AbortAfterInspect,
        Behaviour::SendBacklogChanges,
        Behaviour::NewerMinorVersion,
        Behaviour::ControlInfo,
        Behaviour::LateSends,
        Behaviour::ConcurrentAccepts,
    ];

    /// The knob's name, as `WSK_SIM_ADVERSARY` spells it (`mdl-chains`, …).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Behaviour::SplitIndications => "split-indications",
            Behaviour::MdlChains => "mdl-chains",
            Behaviour::UnmappedIndications => "unmapped-indications",
            Behaviour::MappingFailures => "mapping-failures",
            Behaviour::IndicationFlags => "indication-flags",
            Behaviour::CompletionMix => "completion-mix",
            Behaviour::IrqlMix => "irql-mix",
            Behaviour::AcceptDoesNotInherit => "accept-does-not-inherit",
            Behaviour::ReceiveFromDisabledOnRefusal => "receive-from-disabled-on-refusal",
            Behaviour::SocketFailure => "socket-failure",
            Behaviour::DisableWaitsForCallbacks => "disable-waits-for-callbacks",
            Behaviour::FixedEvents => "fixed-events",
            Behaviour::DocumentedStatuses => "documented-statuses",
            Behaviour::ListenPends => "listen-pends",
            Behaviour::CallbacksRaceRequests => "callbacks-race-requests",
            Behaviour::GracefulDisconnectStuck => "graceful-disconnect-stuck",
            Behaviour::AbortAfterInspect => "abort-after-inspect",
            Behaviour::SendBacklogChanges => "send-backlog-changes",
            Behaviour::NewerMinorVersion => "newer-minor-version",
            Behaviour::ControlInfo => "control-info",
            Behaviour::LateSends => "late-sends",
            Behaviour::ConcurrentAccepts => "concurrent-accepts",
        }
    }

    /// The Microsoft page that permits or requires the behaviour.
    #[must_use]
    pub const fn url(self) -> &'static str {
        match self {
            Behaviour::SplitIndications | Behaviour::IndicationFlags | Behaviour::IrqlMix => {
                "https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_receive_event"
            }
            Behaviour::MdlChains | Behaviour::UnmappedIndications => {
                "https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/ns-wsk-_wsk_buf"
            }
            Behaviour::MappingFailures => {
                "https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-mmgetsystemaddressformdlsafe"
            }
            Behaviour::CompletionMix => {
                "https://learn.microsoft.com/windows-hardware/drivers/network/using-irps-with-winsock-kernel-functions"
            }
            Behaviour::AcceptDoesNotInherit => {
                "https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_accept"
            }
            Behaviour::ReceiveFromDisabledOnRefusal => {
                "https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_receive_from_event"
            }
            Behaviour::SocketFailure => {
                "https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_inspect_event"
            }
            Behaviour::DisableWaitsForCallbacks => {
                "https://learn.microsoft.com/windows-hardware/drivers/network/so-wsk-event-callback"
            }
            Behaviour::FixedEvents => {
                "https://learn.microsoft.com/windows-hardware/drivers/network/wsk-set-static-event-callbacks"
            }
            Behaviour::DocumentedStatuses => {
                "https://learn.microsoft.com/windows-hardware/drivers/network/wsk-transport-list-query"
            }
            Behaviour::ListenPends => {
                "https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_listen"
            }
            Behaviour::CallbacksRaceRequests => {
                "https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_receive"
            }
            Behaviour::GracefulDisconnectStuck => {
                "https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_disconnect"
            }
            Behaviour::AbortAfterInspect => {
                "https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_abort_event"
            }
            Behaviour::SendBacklogChanges => {
                "https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_send_backlog_event"
            }
            Behaviour::NewerMinorVersion => {
                "https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/ns-wsk-_wsk_provider_dispatch"
            }
            Behaviour::ControlInfo => {
                "https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/ns-wsk-_wsk_datagram_indication"
            }
            Behaviour::LateSends => {
                "https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_send"
            }
            Behaviour::ConcurrentAccepts => {
                "https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_accept_event"
            }
        }
    }

    /// The behaviour whose [`name`](Self::name) is `name`.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Behaviour> {
        Behaviour::ALL.into_iter().find(|b| b.name() == name)
    }

    const fn bit(self) -> u32 {
        1 << self as u32
    }
}

impl fmt::Display for Behaviour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The adversary's settings: which [`Behaviour`]s are on, the seed every
/// random choice is drawn from, and the failure rates.
///
/// ```
/// use wsk_sim::{Adversary, Behaviour, Config, Sim};
///
/// // Everything, reproducibly from seed 42 …
/// let sim = Sim::hostile(42);
/// drop(sim);
/// // … or only the data-path behaviours.
/// let adversary = Adversary::none(7)
///     .with(Behaviour::SplitIndications)
///     .with(Behaviour::MdlChains);
/// let mut config = Config::default();
/// config.adversary = Some(adversary);
/// let sim = Sim::with_config(config);
/// drop(sim);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Adversary {
    seed: u64,
    behaviours: u32,
    mapping_failures: u16,
    listener_failures: u16,
    rare_events: u16,
}

impl Adversary {
    /// Every behaviour on, seeded with `seed`; 1 mapping in 8 fails
    /// (125 ‰). No incoming connection finds its listener declared
    /// non-functional unless a rate is set with
    /// [`listener_failures_per_mille`](Self::listener_failures_per_mille):
    /// a listener that dies at random refuses the connection that killed
    /// it, which every test expecting a connection would then have to
    /// retry; the NULL `InspectID`/`AcceptSocket` that tells it still comes
    /// on command ([`Sim::indicate_close_required`](crate::Sim::indicate_close_required)),
    /// and the interleavings test sets a rate.
    #[must_use]
    pub const fn all(seed: u64) -> Adversary {
        let mut behaviours = 0;
        let mut i = 0;
        while i < Behaviour::ALL.len() {
            behaviours |= Behaviour::ALL[i].bit();
            i += 1;
        }
        Adversary {
            seed,
            behaviours,
            mapping_failures: 125,
            listener_failures: 0,
            rare_events: 0,
        }
    }

    /// No behaviour on (add some with [`with`](Self::with)), seeded with
    /// `seed`, with the failure rates of [`all`](Self::all).
    #[must_use]
    pub const fn none(seed: u64) -> Adversary {
        Adversary {
            behaviours: 0,
            ..Adversary::all(seed)
        }
    }

    /// These settings with `b` on.
    #[must_use]
    pub const fn with(mut self, b: Behaviour) -> Adversary {
        self.behaviours |= b.bit();
        self
    }

    /// These settings with `b` off.
    #[must_use]
    pub const fn without(mut self, b: Behaviour) -> Adversary {
        self.behaviours &= !b.bit();
        self
    }

    /// Whether `b` is on.
    #[must_use]
    pub const fn has(&self, b: Behaviour) -> bool {
        self.behaviours & b.bit() != 0
    }

    /// The behaviours that are on.
    pub fn behaviours(&self) -> impl Iterator<Item = Behaviour> + '_ {
        Behaviour::ALL.into_iter().filter(|&b| self.has(b))
    }

    /// The seed every random choice is drawn from.
    #[must_use]
    pub const fn seed(&self) -> u64 {
        self.seed
    }

    /// These settings with another seed.
    #[must_use]
    pub const fn with_seed(mut self, seed: u64) -> Adversary {
        self.seed = seed;
        self
    }

    /// How many of 1000 eligible `MmMapLockedPagesSpecifyCache` calls fail
    /// under [`Behaviour::MappingFailures`] (at most 1000).
    #[must_use]
    pub const fn mapping_failures_per_mille(mut self, n: u16) -> Adversary {
        self.mapping_failures = if n > 1000 { 1000 } else { n };
        self
    }

    /// How many of 1000 incoming connections find their listener declared
    /// non-functional under [`Behaviour::SocketFailure`] (at most 1000).
    #[must_use]
    pub const fn listener_failures_per_mille(mut self, n: u16) -> Adversary {
        self.listener_failures = if n > 1000 { 1000 } else { n };
        self
    }

    /// How many of 1000 eligible moments bring one of the rare events:
    /// [`Behaviour::CallbacksRaceRequests`],
    /// [`Behaviour::GracefulDisconnectStuck`],
    /// [`Behaviour::AbortAfterInspect`] (at most 1000; 0 in
    /// [`all`](Self::all): each defeats a test that waits for the benign
    /// outcome, so a test that handles them sets a rate).
    #[must_use]
    pub const fn rare_events_per_mille(mut self, n: u16) -> Adversary {
        self.rare_events = if n > 1000 { 1000 } else { n };
        self
    }

    pub(crate) const fn rare_event_rate(&self) -> u16 {
        self.rare_events
    }

    pub(crate) const fn mapping_failure_rate(&self) -> u16 {
        self.mapping_failures
    }

    pub(crate) const fn listener_failure_rate(&self) -> u16 {
        self.listener_failures
    }

    /// The adversary `WSK_SIM_ADVERSARY` asks for, or the default
    /// ([`ON_BY_DEFAULT`]) when it is not set.
    ///
    /// The variable holds comma-separated words: `off` (no adversary), `on`
    /// (every behaviour, [`DEFAULT_SEED`]), a decimal or `0x` seed (every
    /// behaviour, that seed), `random` (every behaviour, a seed from the
    /// clock, printed), or behaviour names (only those, e.g.
    /// `WSK_SIM_ADVERSARY=7,mdl-chains,split-indications`).
    ///
    /// # Panics
    ///
    /// On a word it does not know, so that a typo does not silently test
    /// the wrong thing.
    #[must_use]
    pub fn from_env() -> Option<Adversary> {
        match std::env::var("WSK_SIM_ADVERSARY") {
            Ok(v) => Adversary::parse(&v),
            Err(_) => ON_BY_DEFAULT.then(|| Adversary::all(DEFAULT_SEED)),
        }
    }

    fn parse(spec: &str) -> Option<Adversary> {
        let mut seed = DEFAULT_SEED;
        let mut picked = Adversary::none(0);
        for word in spec.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            if word == "off" || word == "none" {
                return None;
            }
            if word == "on" || word == "all" {
                continue;
            }
            if word == "random" {
                seed = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs() ^ u64::from(d.subsec_nanos()));
                eprintln!("wsk-sim: adversary seed {seed} (WSK_SIM_ADVERSARY={seed})");
                continue;
            }
            let number = word
                .strip_prefix("0x")
                .map_or_else(|| word.parse().ok(), |h| u64::from_str_radix(h, 16).ok());
            if let Some(n) = number {
                seed = n;
                continue;
            }
            let b = Behaviour::from_name(word).unwrap_or_else(|| {
                panic!(
                    "wsk-sim: WSK_SIM_ADVERSARY: unknown word {word:?} (off, on, random, a seed, \
                     or one of: {})",
                    Behaviour::ALL.map(Behaviour::name).join(", ")
                )
            });
            picked = picked.with(b);
        }
        let base = if picked.behaviours == 0 {
            Adversary::all(seed)
        } else {
            picked
        };
        Some(base.with_seed(seed))
    }
}

impl fmt::Display for Adversary {
    /// `seed=N behaviours=a,b,…`: what `WSK_SIM_ADVERSARY` would need to
    /// reproduce the run (`WSK_SIM_ADVERSARY=N,a,b,…`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.seed)?;
        if self.behaviours != Adversary::all(0).behaviours {
            for b in self.behaviours() {
                write!(f, ",{b}")?;
            }
        }
        Ok(())
    }
}

/// Splits `seed` into independent streams: one per socket (by its creation
/// order in the machine) and one for the machine.
pub(crate) fn stream(seed: u64, index: u64) -> Rng {
    let mut r = Rng::new(seed ^ index.wrapping_mul(0xD6E8_FEB8_6659_FD93));
    r.next_u64();
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_words() {
        assert_eq!(Adversary::parse("off"), None);
        assert_eq!(Adversary::parse("on"), Some(Adversary::all(DEFAULT_SEED)));
        assert_eq!(Adversary::parse("42"), Some(Adversary::all(42)));
        assert_eq!(Adversary::parse("0x2a"), Some(Adversary::all(42)));
        let a = Adversary::parse("7,mdl-chains,split-indications").unwrap();
        assert_eq!(a.seed(), 7);
        assert_eq!(
            a.behaviours().collect::<Vec<_>>(),
            vec![Behaviour::SplitIndications, Behaviour::MdlChains]
        );
        assert_eq!(Adversary::parse(&a.to_string()), Some(a));
        assert_eq!(Adversary::all(9).to_string(), "9");
    }

    #[test]
    #[should_panic(expected = "unknown word")]
    fn parse_rejects_typos() {
        let _ = Adversary::parse("mdl-chain");
    }
}
