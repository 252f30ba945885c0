/** The authenticated caller, as read from the principals table (never from the token alone). */
export interface Principal {
  id: string;
  displayName: string;
  roles: string[];
  department: string | null;
  region: string | null;
  status: 'active' | 'frozen' | 'departed';
}
