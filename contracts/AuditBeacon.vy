# pragma version ~=0.4.3
# pragma nonreentrancy on
# pragma optimize codesize
"""
@title Audit draw randomness: a commit-reveal beacon among the oracle operators
@custom:contract-name AuditBeacon
@license AGPL-3.0-only
@notice Draws JobMarket's sampled audits from randomness that nobody can know or
        bias before a job's result is committed: not the provider, not one
        operator, not the block producer (docs/SECURITY.md, "The audit draw").

        Time is cut into rounds of ROUND_SECONDS. A result submitted at time T
        is drawn from round floor(T / ROUND_SECONDS) + 1, which has not started
        yet. Each member (an oracle operator) keeps a hash chain
        v_n -> keccak(v_n) = v_(n-1) -> ... -> v_0, commits v_0, and reveals
        the next value of its chain for a round: keccak(reveal) must equal its
        last revealed value. A reveal is accepted from the round's start
        to REVEAL_WINDOW seconds after it, and REVEAL_WINDOW < ROUND_SECONDS: the
        windows of two rounds never overlap. So:
        - every value a member can ever reveal is fixed by its commitment, made
          at least one full round before the rounds it applies to; its only
          choice is to reveal the next value or stay silent;
        - the round's seed is keccak(XOR of keccak(member, reveal), round): no one
          knows it until the last member has revealed, which happens after
          every result drawn from that round was committed;
        - a round that is not fully revealed by its deadline is degraded and
          every job drawn from it is audited. Withholding a reveal, censoring
          one or being offline can therefore only add audits, never remove
          one: a cheating provider gains nothing by buying a member or a block
          producer. The draw stays live with a silent member (at the cost of
          auditing everything until governance replaces it).

        Members reveal only for rounds that jobs are drawn from (JobMarket's
        ResultSubmitted events carry `draw_round`); a chain value is used per
        reveal, not per round, so idle rounds cost nothing.
@custom:security Roles (snekmate access_control, admin = governance timelock
        outside local networks):
        - DEFAULT_ADMIN_ROLE: adds and removes members (effective two rounds
          later, never for a round whose jobs may already be submitted).
        - Members: commit their chain (effective two rounds later) and reveal.
          A member may leave on its own (same delay).
        Nothing here holds funds.
"""

from snekmate.auth import access_control
# Governance adds and removes members.
initializes: access_control

exports: (
    access_control.hasRole,
    access_control.getRoleAdmin,
    access_control.grantRole,
    access_control.revokeRole,
    access_control.renounceRole,
    access_control.DEFAULT_ADMIN_ROLE,
)

################################################################
#                          CONSTANTS                           #
################################################################

# At most this many members (oracle operators).
MAX_MEMBERS: public(constant(uint256)) = 16
# A membership or commitment change made during round c applies from round c + 2: jobs
# submitted during round c are drawn from round c + 1, whose member set is already fixed.
ACTIVATION_DELAY_ROUNDS: public(constant(uint256)) = 2
# Round states returned by `draw_seed` (mirrored in offchain/chain/beacon.py).
ROUND_PENDING: public(constant(uint8)) = 0
ROUND_READY: public(constant(uint8)) = 1
ROUND_DEGRADED: public(constant(uint8)) = 2

_OPEN_ENDED: constant(uint256) = max_value(uint256)

################################################################
#                           STRUCTS                            #
################################################################

struct Member:
    # Last revealed chain value (or the commitment before the first reveal).
    tip: bytes32
    # A new chain's commitment, and the first round it applies to (0: none pending).
    pending_tip: bytes32
    pending_from: uint256
    # The rounds [active_from, active_until) this member must reveal in (0, 0: never a member).
    active_from: uint256
    active_until: uint256
    # Last round this member revealed in.
    last_round: uint256

################################################################
#                            STATE                             #
################################################################

# Length of a round in seconds (> 0).
ROUND_SECONDS: public(immutable(uint256))
# Seconds after a round's start during which its reveals are accepted.
REVEAL_WINDOW: public(immutable(uint256))

members: public(HashMap[address, Member])
# The members, and removed ones until a new member takes their slot (their window closed).
member_list: public(DynArray[address, MAX_MEMBERS])

# round -> XOR of keccak256(abi_encode(member, reveal)) over the reveals so far.
round_xor: public(HashMap[uint256, bytes32])
# round -> reveals so far (low 128 bits) | members required (high 128 bits), the latter
# fixed at the round's first reveal.
_round_counts: HashMap[uint256, uint256]

################################################################
#                            EVENTS                            #
################################################################

event MemberAdded:
    member: indexed(address)
    active_from: uint256

event MemberRemoved:
    member: indexed(address)
    active_until: uint256

event Committed:
    member: indexed(address)
    commitment: bytes32
    applies_from: uint256

event Revealed:
    round: indexed(uint256)
    member: indexed(address)
    secret: bytes32


@deploy
def __init__(round_seconds: uint256, reveal_window: uint256):
    assert round_seconds > 0, "audit_beacon: round length is zero"
    assert reveal_window > 0, "audit_beacon: reveal window is zero"
    # Windows must not overlap: once anyone has revealed for round r, no earlier round can take
    # a reveal, or the last revealer of r could spend its next chain value on r - 1 and so
    # choose between two values for r (a chain value is used per reveal, not per round).
    assert reveal_window < round_seconds, "audit_beacon: reveal window not shorter than a round"
    access_control.__init__()
    ROUND_SECONDS = round_seconds
    REVEAL_WINDOW = reveal_window


################################################################
#                           MEMBERS                            #
################################################################

@external
def add_member(member: address):
    """
    @notice Admin only: `member` must reveal in every drawn round from two rounds from now on
            (it should `commit` before then, or those rounds are degraded). A removed member
            may be added again once its window has closed.
    """
    access_control._check_role(access_control.DEFAULT_ADMIN_ROLE, msg.sender)
    assert member != empty(address), "audit_beacon: member is the zero address"
    now: uint256 = self._current_round()
    start: uint256 = now + ACTIVATION_DELAY_ROUNDS
    m: Member = self.members[member]
    if m.active_until == 0:
        self._list_member(member)
    else:
        # Only once its last window has closed (or if it never opened): re-adding it earlier
        # would move `active_from` and drop it from rounds whose jobs may already be submitted.
        assert m.active_until <= now or m.active_from == m.active_until, "audit_beacon: already a member"
    m.active_from = start
    m.active_until = _OPEN_ENDED
    self.members[member] = m
    log MemberAdded(member=member, active_from=start)


@external
def remove_member(member: address):
    """
    @notice Admin, or the member itself: it stops revealing two rounds from now on.
    """
    if msg.sender != member:
        access_control._check_role(access_control.DEFAULT_ADMIN_ROLE, msg.sender)
    m: Member = self.members[member]
    end: uint256 = self._current_round() + ACTIVATION_DELAY_ROUNDS
    assert m.active_until > end, "audit_beacon: not a member"
    m.active_until = max(end, m.active_from)
    self.members[member] = m
    log MemberRemoved(member=member, active_until=m.active_until)


@external
def commit(commitment: bytes32):
    """
    @notice A member commits the last value v_0 of a new hash chain; it applies from two
            rounds from now on (until then the member reveals from its current chain).
            Used to join and when a chain runs out or its secret is lost.
    """
    m: Member = self.members[msg.sender]
    now: uint256 = self._current_round()
    assert m.active_until > now, "audit_beacon: not a member"
    assert commitment != empty(bytes32), "audit_beacon: commitment is empty"
    if m.pending_from != 0 and m.pending_from <= now + 1:
        # The pending chain already applies to rounds whose jobs may be submitted: it becomes
        # the current chain, and rounds before it can no longer be revealed, so replacing it
        # never gives the member a second value to choose from for any round.
        m.tip = m.pending_tip
        m.last_round = max(m.last_round, m.pending_from - 1)
    m.pending_tip = commitment
    m.pending_from = now + ACTIVATION_DELAY_ROUNDS
    self.members[msg.sender] = m
    log Committed(member=msg.sender, commitment=commitment, applies_from=m.pending_from)


@external
def reveal(round: uint256, secret: bytes32):
    """
    @notice The caller's next chain value `secret` for `round`: keccak256(secret) must equal its last
            revealed value (or its commitment). Accepted from the round's start until
            REVEAL_WINDOW seconds after it, once per member and round, in increasing rounds.
    """
    m: Member = self.members[msg.sender]
    assert m.active_from <= round and round < m.active_until, "audit_beacon: not a member for this round"
    start: uint256 = round * ROUND_SECONDS
    assert block.timestamp >= start, "audit_beacon: round not started"
    assert block.timestamp <= start + REVEAL_WINDOW, "audit_beacon: reveal window over"
    assert round > m.last_round, "audit_beacon: round already revealed"
    if m.pending_from != 0 and round >= m.pending_from:
        m.tip = m.pending_tip
        m.pending_tip = empty(bytes32)
        m.pending_from = 0
    assert m.tip != empty(bytes32) and keccak256(secret) == m.tip, "audit_beacon: reveal does not match the commitment"
    m.tip = secret
    m.last_round = round
    self.members[msg.sender] = m
    counts: uint256 = self._round_counts[round]
    if counts == 0:
        counts = self._required(round) << 128
    self._round_counts[round] = counts + 1
    # Each reveal enters bound to its member: a member that copied another's (public)
    # commitment and reveals the same values cannot cancel them out of the XOR.
    self.round_xor[round] = self.round_xor[round] ^ keccak256(abi_encode(msg.sender, secret))
    log Revealed(round=round, member=msg.sender, secret=secret)


################################################################
#                            VIEWS                             #
################################################################

@external
@view
def draw_seed(round: uint256) -> (uint8, bytes32):
    """
    @notice The round's state and seed: (ROUND_READY, keccak256(abi_encode(round_xor(round),
            round))) once every member revealed; (ROUND_DEGRADED, 0) when the reveal window
            closed first (every job drawn from it is audited); else (ROUND_PENDING, 0).
    """
    counts: uint256 = self._round_counts[round]
    if counts != 0 and counts % 2**128 == counts >> 128:
        return ROUND_READY, keccak256(abi_encode(self.round_xor[round], round))
    if block.timestamp > round * ROUND_SECONDS + REVEAL_WINDOW:
        return ROUND_DEGRADED, empty(bytes32)
    return ROUND_PENDING, empty(bytes32)


@external
@view
def round_counts(round: uint256) -> (uint256, uint256):
    """
    @notice (reveals so far, members required); the latter is 0 until the first reveal.
    """
    counts: uint256 = self._round_counts[round]
    return counts % 2**128, counts >> 128


@external
@view
def required_members(round: uint256) -> uint256:
    """
    @notice How many members must reveal in `round`: the count frozen at its first reveal, or
            before that the members whose window contains it (as far as known now).
    """
    counts: uint256 = self._round_counts[round]
    if counts != 0:
        return counts >> 128
    return self._required(round)


@external
@view
def current_round() -> uint256:
    """
    @notice The round the chain is in now (block.timestamp // ROUND_SECONDS); a result
            submitted now is drawn from the next one.
    """
    return self._current_round()


@external
@view
def member_count() -> uint256:
    """
    @notice Length of `member_list` (members, and removed ones whose slot was not yet reused).
    """
    return len(self.member_list)


@internal
@view
def _current_round() -> uint256:
    return block.timestamp // ROUND_SECONDS


@internal
def _list_member(member: address):
    # Appends `member`, or when the list is full takes the slot of a member whose window closed
    # before the current round: every round it belonged to is past its reveal window, so its
    # required count is either frozen (it had a reveal) or no longer read (degraded for good).
    if len(self.member_list) < MAX_MEMBERS:
        self.member_list.append(member)
        return
    now: uint256 = self._current_round()
    for i: uint256 in range(MAX_MEMBERS):
        old: address = self.member_list[i]
        if self.members[old].active_until <= now:
            # The evicted member is forgotten: if it is ever added again it is listed again.
            self.members[old] = empty(Member)
            self.member_list[i] = member
            return
    raise "audit_beacon: too many members"


@internal
@view
def _required(round: uint256) -> uint256:
    n: uint256 = 0
    for a: address in self.member_list:
        if self.members[a].active_from <= round and round < self.members[a].active_until:
            n += 1
    return n
