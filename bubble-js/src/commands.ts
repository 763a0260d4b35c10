/**
 * The command codes of docs/protocol.md section 4: what a frame's body is.
 * A request's answer has its own code (Send 16 is answered by SendAck 17),
 * except business commands, which are answered with the same code.
 */
export const Command = {
  Error: 1,
  Ping: 2,
  Pong: 3,
  HandshakeHello: 4,
  HandshakeAnswer: 5,
  ResumeHello: 6,
  Kick: 7,
  Send: 16,
  SendAck: 17,
  Push: 18,
  Sync: 19,
  SyncPage: 20,
  MarkRead: 21,
  MarkReadAck: 22,
  Unread: 23,
  UnreadCounts: 24,
  Recall: 25,
  Delete: 26,
  Typing: 27,
  History: 28,
  HistoryPage: 29,
  Conversations: 30,
  ConversationList: 31,
  GroupCreate: 32,
  GroupInfo: 33,
  GroupJoin: 34,
  GroupLeave: 35,
  GroupMembersQuery: 36,
  GroupMembers: 37,
  Ok: 38,
  ChannelPull: 48,
  ChannelPage: 49,
  ChannelNotify: 50,
  PresenceQuery: 64,
  PresenceResult: 65,
  Search: 80,
  SearchResults: 81,
  SystemPush: 96,
  Edit: 112,
  React: 113,
  Settings: 114,
  SettingsAck: 115,
  Blocked: 116,
  BlockedList: 117,
  ReadStateQuery: 118,
  ReadState: 119,
  GroupsQuery: 120,
  GroupList: 121,
  GroupUpdate: 122,
  GroupSetRole: 123,
  GroupTransfer: 124,
  GroupMute: 125,
  GroupDismiss: 126,
  GroupAddMembers: 127,
  GroupRemoveMembers: 128,
  PushRegister: 129,
  PushUnregister: 130,
  AppState: 131,
  MediaUpload: 132,
  MediaUploadTicket: 133,
} as const;

export type CommandName = keyof typeof Command;

/** The first code of the product-defined range (protocol.md 4.10). */
export const BUSINESS_COMMAND_MIN = 0x8000;

/** Whether `code` is a product-defined business command. */
export function isBusinessCommand(code: number): boolean {
  return Number.isInteger(code) && code >= BUSINESS_COMMAND_MIN && code <= 0xffff;
}

const names = new Map<number, string>(Object.entries(Command).map(([name, code]) => [code, name]));

/** A readable name for a command code, for error messages and logs. */
export function commandName(code: number): string {
  if (isBusinessCommand(code)) return `Business(0x${code.toString(16)})`;
  return names.get(code) ?? `Unknown(${code})`;
}
